/** The peer (scenarios f and g): oidc-provider in its own Node process (peer-server.ts) on a free port. */
import { spawn, type ChildProcess } from "node:child_process";
import { createPrivateKey, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { exportJWK, generateKeyPair } from "jose";
import { freePort } from "../dev-server.ts";
import { AssertionPool, poolHooks } from "./assertions.ts";
import { onCleanup, sleep } from "./lifecycle.ts";
import type { LoadRequest, Target } from "./load.ts";
import { memoryMiB } from "./proc.ts";
import { assertionRequest, basicAuth, form } from "./requests.ts";
import { root } from "./runtime.ts";
import type { RunOptions, Scenario } from "./scenario.ts";
import type { BenchAccount } from "./seed.ts";

async function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number, output: () => string): Promise<RegExpExecArray> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const m = pattern.exec(output());
    if (m) return m;
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  throw new Error(`a child process did not come up (${pattern}):\n${output().slice(-3000)}`);
}

/** Starts the peer with a client_secret_basic client and a private_key_jwt one; resolves once it listens. */
async function startPeer(clientId: string, clientSecret: string, pkjwtClientId: string, pkjwtJwk: object) {
  const port = await freePort();
  const args = [path.join(root, "scripts", "bench", "peer-server.ts"), String(port), clientId, clientSecret, pkjwtClientId, JSON.stringify(pkjwtJwk)];
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, NODE_ENV: "production" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  await waitForLine(child, /PEER_READY (\{.*\})/, 30_000, () => output);
  return {
    base: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r)).catch(() => {});
      }
    },
  };
}

/** A private_key_jwt client for the peer: an ES256 key pair, the private half for AssertionPool. */
async function pkjwtClient(id: string): Promise<{ client: BenchAccount; publicJwk: object }> {
  const pair = await generateKeyPair("ES256", { extractable: true });
  const kid = "bench-peer-pkjwt";
  const privateJwk = await exportJWK(pair.privateKey);
  const publicJwk = { ...(await exportJWK(pair.publicKey)), kid, alg: "ES256", use: "sig" };
  return { client: { id, token: "", tokenId: "", key: { kid, privateKey: pair.privateKey, nodeKey: createPrivateKey({ key: privateJwk as never, format: "jwk" }) } }, publicJwk };
}

/**
 * (f) oidc-provider on this Node: client_credentials with client_secret_basic, ES256 JWT access
 * tokens; (g) the same grant with private_key_jwt (a fresh pre-signed ES256 assertion per request,
 * aud = the peer's issuer). Started, checked, and stopped by `stop`.
 */
export async function peerScenarios(run: RunOptions, wanted: (id: string) => boolean): Promise<{ scenarios: Scenario[]; stop: () => Promise<void> }> {
  const peerSecret = randomBytes(24).toString("base64url");
  const pk = await pkjwtClient("bench-pkjwt-client");
  const peer = await startPeer("bench-client", peerSecret, pk.client.id, pk.publicJwk);
  onCleanup(peer.stop);
  const peerTarget: Target = { name: "peer", base: peer.base, pids: () => [peer.pid] };
  const peerRequest: LoadRequest = {
    method: "POST",
    path: "/token",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: basicAuth("bench-client", peerSecret) },
    body: form({ grant_type: "client_credentials" }),
  };
  const check = await fetch(peer.base + peerRequest.path, { method: "POST", headers: peerRequest.headers, body: peerRequest.body! });
  const issued = (await check.json()) as { access_token?: string };
  const header = issued.access_token ? JSON.parse(Buffer.from(issued.access_token.split(".")[0]!, "base64url").toString()) : null;
  if (header?.alg !== "ES256") throw new Error(`the peer did not issue an ES256 JWT: ${JSON.stringify(issued)}`);
  const version = JSON.parse(readFileSync(path.join(root, "node_modules", "oidc-provider", "package.json"), "utf8")).version;
  const scenarios: Scenario[] = [];
  if (wanted("peer")) {
    scenarios.push({
      id: "peer",
      label: "(f) peer: oidc-provider client_secret_basic",
      target: peerTarget,
      request: peerRequest,
      hooks: { notes: () => [`oidc-provider ${version}, JWT header ${JSON.stringify(header)}, peak RSS ${memoryMiB(peer.pid, "VmHWM").toFixed(0)} MiB`] },
    });
  }
  if (wanted("peer-private-key-jwt")) {
    const pool = new AssertionPool([pk.client], `http://127.0.0.1:${new URL(peer.base).port}`);
    const next = (): LoadRequest => ({ ...assertionRequest(pool.next()), path: "/token" });
    await pool.fill(2 + run.connections); // the checks and the clients' first requests
    // The check: one assertion is accepted once, a replay is refused (oidc-provider's jti check).
    const probe = next();
    const first = await fetch(peer.base + probe.path, { method: "POST", headers: probe.headers, body: probe.body! });
    const again = await fetch(peer.base + probe.path, { method: "POST", headers: probe.headers, body: probe.body! });
    if (first.status !== 200 || again.status === 200) {
      throw new Error(`the peer's private_key_jwt check failed: ${first.status} ${await first.text()} / replay ${again.status}`);
    }
    scenarios.push({
      id: "peer-private-key-jwt",
      label: "(g) peer: oidc-provider private_key_jwt (ES256 assertions)",
      target: peerTarget,
      request: next(),
      next,
      hooks: poolHooks(pool, run.connections, () => `oidc-provider ${version}, peak RSS ${memoryMiB(peer.pid, "VmHWM").toFixed(0)} MiB; `),
    });
  }
  return { scenarios, stop: peer.stop };
}
