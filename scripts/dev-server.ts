/**
 * Starts the real dev server (`scripts/dev.ts`) on a free port with a fresh persistence folder,
 * for black-box tests and the smoke script. Returns its URL, the root token it printed, and stop().
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

export interface DevServer {
  base: string;
  port: number;
  rootToken: string;
  /** The server's KEYWARD_PERSIST_DIR (its local D1, KV and Durable Object state). */
  persistDir: string;
  output: () => string;
  stop: () => Promise<void>;
}

export interface DevServerOptions {
  /**
   * The ISSUER (KEYWARD_ISSUER); default `base`, the loopback address the tests call. "from-port"
   * sets none, so scripts/dev.ts derives it from PORT as `npm run dev` does.
   */
  issuer?: string | "from-port";
  /** FEDERATION_ALLOWED_ISSUERS (KEYWARD_FEDERATION_ALLOWED_ISSUERS): the external issuers trust policies may name. */
  federationAllowedIssuers?: string[];
  /** STATUS_LIST_TTL_SECONDS (KEYWARD_STATUS_LIST_TTL_SECONDS): how long status lists are cached. */
  statusListTtlSeconds?: number;
  timeoutMs?: number;
}

export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const root = path.resolve(import.meta.dirname, "..");
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const persist = mkdtempSync(path.join(tmpdir(), "keyward-e2e-"));
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), KEYWARD_PERSIST_DIR: persist, KEYWARD_ISSUER: options.issuer ?? base };
  if (options.issuer === "from-port") delete env.KEYWARD_ISSUER;
  if (options.statusListTtlSeconds !== undefined) env.KEYWARD_STATUS_LIST_TTL_SECONDS = String(options.statusListTtlSeconds);
  if (options.federationAllowedIssuers) env.KEYWARD_FEDERATION_ALLOWED_ISSUERS = options.federationAllowedIssuers.join(",");
  const child = spawn(process.execPath, [path.join(root, "scripts", "dev.ts")], {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const stop = async () => {
    if (child.exitCode === null) {
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {
        // already gone
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    rmSync(persist, { recursive: true, force: true });
  };
  const until = Date.now() + (options.timeoutMs ?? 90_000);
  while (Date.now() < until) {
    const token = /KEYWARD_ROOT_TOKEN=(sat_[0-9A-Za-z]+)/.exec(output)?.[1];
    if (token && output.includes("[dev] Keyward is listening")) {
      return { base, port, rootToken: token, persistDir: persist, output: () => output, stop };
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`the dev server did not come up:\n${output}`);
}
