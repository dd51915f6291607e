/**
 * The runtime's floor: what one binding call costs a bare Worker in this Miniflare, with none of
 * Keyward's code. Each row is one request shape (a constant response, one KV get, D1 queries alone,
 * batched and in sequence) at the bench's concurrency on the Worker's own socket; rounds interleave
 * the rows, and each row is reported as its median ratio to the constant response of its round.
 * A scenario of the bench cannot run faster than the row of the calls it must make; `x healthz`
 * puts the rows in the bench's own unit (Keyward's /healthz, started beside it).
 *
 * FLOOR_ROUNDS (3), FLOOR_DURATION (5 s), FLOOR_CONNECTIONS (32), FLOOR_KV_KEYS (10,000 keys of a
 * token-record-sized JSON value), FLOOR_ROWS (1,000 D1 rows), FLOOR_ONLY (a comma list of rows to
 * run; the two references always run).
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import { envNumber, logger, onCleanup, runMain } from "./bench/lifecycle.ts";
import { load, type LoadRequest, type Target } from "./bench/load.ts";
import { workerdPids } from "./bench/proc.ts";
import { startWorker } from "./bench/runtime.ts";
import { fmt, table } from "./bench/report.ts";

const log = logger("bench:floor");

const FLOOR_WORKER = `
import { DurableObject } from "cloudflare:workers";
export class FloorObject extends DurableObject {
  seen = new Set();
  remember(key) {
    if (this.seen.has(key)) return false;
    if (this.seen.size > 20000) this.seen.clear();
    this.seen.add(key);
    return true;
  }
}
const pick = (n) => Math.floor(Math.random() * n);
const P256 = { name: "ECDSA", namedCurve: "P-256" };
const ES256 = { name: "ECDSA", hash: "SHA-256" };
const signed = (async () => {
  const pair = await crypto.subtle.generateKey(P256, false, ["sign", "verify"]);
  const data = new TextEncoder().encode("header.payload-of-a-client-assertion-of-some-two-hundred-bytes".repeat(3));
  const signature = await crypto.subtle.sign(ES256, pair.privateKey, data);
  return { key: pair.publicKey, privateKey: pair.privateKey, data, signature };
})();
const remember = (env) => env.FLOOR_DO.get(env.FLOOR_DO.idFromName("shard:" + pick(8))).remember(crypto.randomUUID());
const one = (env, id) => env.DB.prepare("select * from items where id = ?").bind(id).first();
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const n = Number(env.KEYS), rows = Number(env.ROWS);
    switch (url.pathname) {
      case "/constant": return new Response("ok");
      case "/kv-text": return new Response((await env.KV.get("k:" + pick(n))) ?? "missing");
      case "/kv-json": return Response.json(await env.KV.get("k:" + pick(n), "json"));
      case "/d1-one": return Response.json(await one(env, pick(rows)));
      case "/d1-batch2": {
        const s = env.DB.prepare("select * from items where id = ?");
        return Response.json(await env.DB.batch([s.bind(pick(rows)), s.bind(pick(rows))]));
      }
      case "/do-call": {
        return Response.json(await remember(env));
      }
      case "/es256-verify": {
        const { key, data, signature } = await signed;
        return Response.json(await crypto.subtle.verify(ES256, key, signature, data));
      }
      case "/es256-sign": {
        const { privateKey, data } = await signed;
        return Response.json((await crypto.subtle.sign(ES256, privateKey, data)).byteLength);
      }
      case "/pkjwt-floor": {
        const { key, privateKey, data, signature } = await signed;
        if (!(await crypto.subtle.verify(ES256, key, signature, data))) return new Response("bad", { status: 400 });
        if (!(await remember(env))) return new Response("replay", { status: 400 });
        return Response.json((await crypto.subtle.sign(ES256, privateKey, data)).byteLength);
      }
      case "/d1-three": {
        const out = [];
        for (let i = 0; i < 3; i++) out.push(await one(env, pick(rows)));
        return Response.json(out);
      }
      case "/seed": {
        const { from, to, value } = await request.json();
        const puts = [];
        for (let i = from; i < to; i++) puts.push(env.KV.put("k:" + i, value));
        await Promise.all(puts);
        return new Response("ok");
      }
    }
    return new Response("not found", { status: 404 });
  },
};`;

const ALL_ROWS = [
  { id: "constant", label: "constant response" },
  { id: "healthz", label: "Keyward's GET /healthz (the bench's ceiling)" },
  { id: "kv-text", label: "one KV get, text" },
  { id: "kv-json", label: "one KV get, json" },
  { id: "d1-one", label: "one D1 query (by primary key)" },
  { id: "d1-batch2", label: "one D1 batch of 2 queries" },
  { id: "d1-three", label: "three D1 queries in sequence" },
  { id: "do-call", label: "one Durable Object RPC (a check-and-set in its memory)" },
  { id: "es256-verify", label: "one ES256 signature verify (WebCrypto)" },
  { id: "es256-sign", label: "one ES256 signature (WebCrypto)" },
  { id: "pkjwt-floor", label: "private_key_jwt's floor: an ES256 verify, the Durable Object RPC, an ES256 signature" },
] as const;
const only = process.env.FLOOR_ONLY?.split(",");
const ROWS = ALL_ROWS.filter((r) => r.id === "constant" || r.id === "healthz" || !only || only.includes(r.id));

/** A token record's shape and size (the exchange's KV value). */
const RECORD = JSON.stringify({
  id: "tok_0123456789abcdefghijklmn",
  accountId: "sa_0123456789abcdefghijklmn",
  expiresAt: null,
  statusIdx: 12345,
  account: { accountId: "sa_0123456789abcdefghijklmn", orgId: "org_0123456789abcdefghijklmn", name: "deploy-bot", status: "active", scopes: ["orgs.read", "service-accounts.read", "audit.read"], roles: ["viewer"], allowedCidrs: [], customClaims: {} },
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<number> {
  const rounds = envNumber("FLOOR_ROUNDS", 3);
  const seconds = envNumber("FLOOR_DURATION", 5);
  const connections = envNumber("FLOOR_CONNECTIONS", 32);
  const keys = envNumber("FLOOR_KV_KEYS", 10_000);
  const rows = envNumber("FLOOR_ROWS", 1_000);
  const persist = mkdtempSync(path.join(os.tmpdir(), "keyward-floor-"));
  onCleanup(() => rmSync(persist, { recursive: true, force: true }));
  const others = new Set(workerdPids(process.pid));
  const mf = new Miniflare(convertV4MiniflareOptions({
    host: "127.0.0.1",
    port: 0,
    cf: false,
    enableDevRegistry: false,
    log: new Log(LogLevel.WARN),
    resourcePersistencePath: persist,
    workers: [
      {
        name: "floor",
        modules: true,
        script: FLOOR_WORKER,
        compatibilityDate: "2025-09-01",
        bindings: { KEYS: String(keys), ROWS: String(rows) },
        kvNamespaces: ["KV"],
        d1Databases: ["DB"],
        durableObjects: { FLOOR_DO: { className: "FloorObject", useSQLite: true } },
        unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
      },
    ],
  }));
  onCleanup(() => mf.dispose());
  await mf.ready;
  const base = (await mf.unsafeGetDirectURL("floor")).origin;
  const ours = workerdPids(process.pid).filter((p) => !others.has(p));
  const floor: Target = { name: "direct", base, pids: () => ours };
  // The bench's ceiling, in its own workerd: every row is also reported against it.
  const keyward = (await startWorker({ tmpPrefix: "keyward-floor-app-", signingAlg: null, inspector: false, rateLimits: true, log })).direct;
  const targetOf = (id: string) => (id === "healthz" ? keyward : floor);

  const db = await mf.getD1Database("DB");
  await db.exec("create table items (id integer primary key, name text not null, payload text not null)");
  for (let i = 0; i < rows; i += 500) {
    const part = Array.from({ length: Math.min(500, rows - i) }, (_, j) => i + j);
    await db.batch(part.map((id) => db.prepare("insert into items (id, name, payload) values (?, ?, ?)").bind(id, `item-${id}`, RECORD)));
  }
  const t = performance.now();
  for (let i = 0; i < keys; i += 500) {
    const res = await fetch(`${base}/seed`, { method: "POST", body: JSON.stringify({ from: i, to: Math.min(keys, i + 500), value: RECORD }) });
    if (!res.ok) throw new Error(`seeding failed: ${res.status} ${await res.text()}`);
  }
  log(`seeded ${keys} KV keys (${RECORD.length} B each) in ${((performance.now() - t) / 1000).toFixed(1)} s and ${rows} D1 rows; ${rounds} rounds x ${seconds} s at ${connections} connections on ${base}`);

  const request = (id: string): LoadRequest => ({ method: "GET", path: `/${id}`, headers: {} });
  for (const row of ROWS) {
    const res = await fetch(targetOf(row.id).base + request(row.id).path);
    if (!res.ok) throw new Error(`${row.id}: ${res.status}`);
    await res.arrayBuffer();
  }
  await load(floor, connections, request("constant"), 2);
  await load(keyward, connections, request("healthz"), 2);
  const ratios = new Map<string, number[]>(ROWS.map((r) => [r.id, []]));
  const toHealthz = new Map<string, number[]>(ROWS.map((r) => [r.id, []]));
  const p50s = new Map<string, number[]>(ROWS.map((r) => [r.id, []]));
  const tails = new Map<string, number[]>(ROWS.map((r) => [r.id, []]));
  const other: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    let ceiling = 0;
    let healthz = 0;
    const measured: [string, number][] = [];
    for (const row of ROWS) {
      const stats = await load(targetOf(row.id), connections, request(row.id), seconds);
      if (stats.non2xx > 0 || stats.errors > 0) throw new Error(`${row.id}: ${stats.non2xx} non-2xx, ${stats.errors} errors (${stats.firstFailure})`);
      if (row.id === "constant") ceiling = stats.rps;
      if (row.id === "healthz") healthz = stats.rps;
      measured.push([row.id, stats.rps]);
      ratios.get(row.id)!.push(stats.rps / ceiling);
      p50s.get(row.id)!.push(stats.p50);
      tails.get(row.id)!.push(stats.p99 / stats.p50);
      other.push(stats.otherCpuPct);
      log(`round ${round} ${row.id}: ${(stats.rps / ceiling).toFixed(3)} x constant, p99/p50 ${(stats.p99 / stats.p50).toFixed(1)}, other CPU ${stats.otherCpuPct.toFixed(0)} %`);
    }
    for (const [id, rps] of measured) toHealthz.get(id)!.push(rps / healthz);
  }
  console.log(`\nThe runtime's floor (median of ${rounds} rounds; other CPU during the rounds: median ${median(other).toFixed(0)} %, max ${Math.max(...other).toFixed(0)} %)\n`);
  console.log(
    table(
      ["row", "calls", "x constant", "x healthz", "p50 x constant's", "p99/p50"],
      ROWS.map((r) => [r.id, r.label, fmt(median(ratios.get(r.id)!), 3), fmt(median(toHealthz.get(r.id)!), 3), fmt(median(p50s.get(r.id)!) / median(p50s.get("constant")!), 1), fmt(median(tails.get(r.id)!), 1)]),
    ),
  );
  return 0;
}

await runMain("bench:floor", main);
