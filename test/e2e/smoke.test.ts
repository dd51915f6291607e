import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevServer, type DevServer } from "../../scripts/dev-server.ts";
import { smokeWalk, TOKEN_VARIABLE } from "../../scripts/smoke.ts";

const SMOKE = path.resolve(import.meta.dirname, "..", "..", "scripts", "smoke.ts");

/** `node scripts/smoke.ts ...args` (what `npm run smoke -- ...args` runs): exit code and output. */
async function runSmoke(args: string[], options: { env?: Record<string, string>; stdin?: string } = {}) {
  const env = { ...process.env, ...options.env };
  if (!options.env?.[TOKEN_VARIABLE]) delete env[TOKEN_VARIABLE];
  const child = spawn(process.execPath, [SMOKE, ...args], { env, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  child.stdin.end(options.stdin ?? "");
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  return { code, stdout, stderr };
}

describe("the real dev server", () => {
  let server: DevServer;
  beforeAll(async () => {
    server = await startDevServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("bootstrapped once and printed the root token", () => {
    expect(server.rootToken).toMatch(/^sat_[0-9A-Za-z]{38}$/);
    expect(server.output().match(/KEYWARD_ROOT_TOKEN=/g)?.length).toBe(1);
  });

  it("walks org -> service account -> token -> authenticated call -> revoke -> 401", async () => {
    const steps = await smokeWalk(server.base, server.rootToken);
    expect(steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      "create org:201",
      "create service account:201",
      "issue token:201",
      "authenticated call:200",
      "revoke token:204",
      "revoked token refused:401",
    ]);
  });

  it("npm run smoke -- --base URL takes the root token from KEYWARD_ROOT_TOKEN, or from standard input", async () => {
    const fromEnv = await runSmoke(["--base", server.base], { env: { [TOKEN_VARIABLE]: server.rootToken } });
    expect(fromEnv.code, `${fromEnv.stdout}\n${fromEnv.stderr}`).toBe(0);
    expect(fromEnv.stdout).toContain("6 passed, 0 failed");
    const fromStdin = await runSmoke(["--base", server.base], { stdin: `${server.rootToken}\n` });
    expect(fromStdin.code, `${fromStdin.stdout}\n${fromStdin.stderr}`).toBe(0);
    expect(fromStdin.stdout).toContain("6 passed, 0 failed");
    expect(fromEnv.stdout + fromEnv.stderr + fromStdin.stdout + fromStdin.stderr).not.toContain(server.rootToken);
  });

  it("refuses --token (argv shows in npm's echo and the process list), saying where the token goes instead", async () => {
    for (const args of [["--base", server.base, "--token", server.rootToken], ["--base", server.base, `--token=${server.rootToken}`], ["--token", server.rootToken]]) {
      const res = await runSmoke(args, { env: { [TOKEN_VARIABLE]: server.rootToken } });
      expect(res.code, `${args.join(" ")}: ${res.stdout}\n${res.stderr}`).toBe(2);
      expect(res.stderr).toContain("--token is refused");
      expect(res.stderr).toContain("process list");
      expect(res.stderr).toContain(TOKEN_VARIABLE);
      expect(res.stdout).not.toContain("passed");
    }
    const none = await runSmoke(["--base", server.base]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(`root token in ${TOKEN_VARIABLE} or on standard input`);
  });

  it("refuses a second bootstrap, and a wrong bootstrap secret", async () => {
    const secret = /^BOOTSTRAP_SECRET=(.+)$/m.exec(readFileSync(".dev.vars", "utf8"))?.[1];
    const again = await fetch(`${server.base}/api/v1/bootstrap`, { method: "POST", headers: { authorization: `Bearer ${secret}` } });
    expect(again.status, await again.text()).toBe(409);
    const wrong = await fetch(`${server.base}/api/v1/bootstrap`, { method: "POST", headers: { authorization: "Bearer wrong" } });
    expect(wrong.status).toBe(401);
  });
});
