/**
 * The entry module `npm run bench:loop` puts in front of the bundle: `POST /__loop` replays the
 * requests it is given through the Worker's own `fetch`, `n` in all, `concurrency` at a time, in
 * the isolate (no HTTP, no load generator); every other request goes to the Worker unchanged.
 * The bundle itself is the one deployed: nothing of this reaches `wrangler deploy`.
 */
export const LOOP_ENTRY = `import worker from "./index.js";
export * from "./index.js";

export default {
  ...worker,
  async fetch(request, env, ctx) {
    if (new URL(request.url).pathname !== "/__loop") return worker.fetch(request, env, ctx);
    const { n, concurrency, requests } = await request.json();
    let next = 0;
    const failures = [];
    const lane = async () => {
      while (next < n) {
        const r = requests[next++ % requests.length];
        const res = await worker.fetch(new Request("http://127.0.0.1" + r.path, { method: r.method, headers: r.headers, body: r.body }), env, ctx);
        const body = await res.text();
        if (!res.ok && failures.length < 3) failures.push(res.status + " " + body.slice(0, 200));
      }
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
    return Response.json({ failures });
  },
};
`;
