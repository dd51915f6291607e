import http from "node:http";
import net from "node:net";

/**
 * A stand-in for external OIDC issuers (GitHub Actions, a Kubernetes cluster) on loopback, run by
 * Node in the workers project's globalSetup: the Worker under test fetches its discovery documents
 * and key sets over real HTTP. Each issuer lives under `/<name>`; the tests set its keys and
 * misbehaviour through `POST /__control/<name>` and read how often it was fetched from
 * `GET /__control/<name>`.
 *
 * Misbehaviours (`mode`): ok, down (503), slow (answers after 5 s), big-jwks (a key set over 64 KiB),
 * redirect-jwks (the key set answers 302 to another host), discovery-other-host (jwks_uri on
 * another host), discovery-wrong-issuer, html (the key set as text/html).
 */

export type IssuerMode = "ok" | "down" | "slow" | "big-jwks" | "redirect-jwks" | "discovery-other-host" | "discovery-wrong-issuer" | "html";

interface IssuerState {
  keys: object[];
  mode: IssuerMode;
  cacheControl: string | undefined;
  hits: { discovery: number; jwks: number };
}

const issuers = new Map<string, IssuerState>();
const stateOf = (name: string): IssuerState => {
  let s = issuers.get(name);
  if (!s) issuers.set(name, (s = { keys: [], mode: "ok", cacheControl: undefined, hits: { discovery: 0, jwks: 0 } }));
  return s;
};

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(text);
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text;
}

/** Starts the server on 127.0.0.1:`port` and returns a function that stops it. */
export async function startIssuerServer(port: number): Promise<() => Promise<void>> {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", `http://127.0.0.1:${port}`);
    const [first, second, ...rest] = url.pathname.split("/").filter(Boolean);
    if (first === "__control" && second) {
      const state = stateOf(second);
      if (req.method === "POST") {
        const patch = JSON.parse((await readBody(req)) || "{}");
        if (patch.resetHits) state.hits = { discovery: 0, jwks: 0 };
        if (patch.keys) state.keys = patch.keys;
        if (patch.mode) state.mode = patch.mode;
        if ("cacheControl" in patch) state.cacheControl = patch.cacheControl ?? undefined;
      }
      return send(res, 200, state);
    }
    if (!first) return send(res, 404, { error: "not found" });
    const state = stateOf(first);
    const issuer = `http://127.0.0.1:${port}/${first}`;
    const path = [second, ...rest].join("/");
    if (state.mode === "slow") await new Promise((r) => setTimeout(r, 5000));
    if (state.mode === "down") return send(res, 503, { error: "down" });
    if (path === ".well-known/openid-configuration") {
      state.hits.discovery++;
      const jwksHost = state.mode === "discovery-other-host" ? `http://localhost:${port}` : `http://127.0.0.1:${port}`;
      return send(res, 200, {
        issuer: state.mode === "discovery-wrong-issuer" ? `${issuer}-other` : issuer,
        jwks_uri: `${jwksHost}/${first}/jwks`,
        response_types_supported: ["id_token"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256", "ES256", "EdDSA"],
      });
    }
    if (path === "jwks") {
      state.hits.jwks++;
      if (state.mode === "redirect-jwks") {
        res.writeHead(302, { location: `http://localhost:${port}/${first}/jwks-elsewhere` });
        return res.end();
      }
      const headers: Record<string, string> = state.cacheControl ? { "cache-control": state.cacheControl } : {};
      if (state.mode === "html") return send(res, 200, { keys: state.keys }, { ...headers, "content-type": "text/html" });
      if (state.mode === "big-jwks") {
        const padding = Array.from({ length: 200 }, (_, i) => ({ kty: "oct", kid: `pad-${i}`, k: "A".repeat(400) }));
        return send(res, 200, { keys: [...state.keys, ...padding] }, headers);
      }
      return send(res, 200, { keys: state.keys }, headers);
    }
    if (path === "jwks-elsewhere") return send(res, 200, { keys: state.keys });
    return send(res, 404, { error: "not found" });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
