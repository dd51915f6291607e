/** The peer (scenario f): oidc-provider in its own Node process (peer-server.ts) on a free port. */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { freePort } from "../dev-server.ts";
import { onCleanup, sleep } from "./lifecycle.ts";
import type { LoadRequest, Target } from "./load.ts";
import { memoryMiB } from "./proc.ts";
import { basicAuth, form } from "./requests.ts";
import { root } from "./runtime.ts";
import type { Scenario } from "./scenario.ts";

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

/** Starts the peer with one client_secret_basic client; resolves once it listens. */
async function startPeer(clientId: string, clientSecret: string) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(root, "scripts", "bench", "peer-server.ts"), String(port), clientId, clientSecret], {
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

/** (f) oidc-provider on this Node: client_credentials with client_secret_basic, ES256 JWT access tokens. Started, checked, and stopped by `stop`. */
export async function peerScenario(): Promise<{ scenario: Scenario; stop: () => Promise<void> }> {
  const peerSecret = randomBytes(24).toString("base64url");
  const peer = await startPeer("bench-client", peerSecret);
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
  const scenario: Scenario = {
    id: "peer",
    label: "(f) peer: oidc-provider client_secret_basic",
    target: peerTarget,
    request: peerRequest,
    hooks: { notes: () => [`oidc-provider ${version}, JWT header ${JSON.stringify(header)}, peak RSS ${memoryMiB(peer.pid, "VmHWM").toFixed(0)} MiB`] },
  };
  return { scenario, stop: peer.stop };
}
