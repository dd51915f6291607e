import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { CronCheck } from "../../scripts/bench/cron.ts";

const root = path.resolve(import.meta.dirname, "..", "..");
const scenarios = ["healthz", "exchange", "client-basic", "private-key-jwt", "list-accounts", "federated", "peer"];
const labels = [
  "(a) GET /healthz",
  "(b) POST /api/auth/access-tokens/jwt",
  "(c) /oauth/token client_secret_basic",
  "(d) /oauth/token private_key_jwt",
  "(e) GET /api/v1/orgs/{org}/service-accounts?limit=20",
  "(h) /oauth/token jwt-bearer",
  "(f) peer: oidc-provider",
];

/** Runs a bench script to its end: its exit code and output. */
async function runScript(script: string, args: string[], env: Record<string, string>, timeoutMs: number) {
  const child = spawn(process.execPath, [path.join(root, "scripts", script), ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
    child.on("exit", (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  return { code, stdout, stderr };
}

/** `npm run bench -- --smoke`: the benchmark's 2-second smoke (CI runs only this of it). */
describe("the benchmark's smoke", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "keyward-bench-smoke-"));
  const output = path.join(dir, "bench.json");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("runs every scenario without an error or a non-2xx, prints the table and writes the JSON", async () => {
    const { code, stdout, stderr } = await runScript("bench.ts", ["--smoke"], { BENCH_OUTPUT: output }, 140_000);
    expect(code, `${stdout}\n${stderr}`).toBe(0);

    for (const label of labels) expect(stdout).toContain(label);
    expect(stdout).toMatch(/targets:/);

    const report = JSON.parse(readFileSync(output, "utf8")) as {
      settings: { smoke: boolean };
      table: { id: string; rps: number; non2xx: number; errors: number }[];
      scale: { rpsBase?: number; rpsBigSpread?: number; cron?: Record<string, CronCheck> };
    };
    expect(report.settings.smoke).toBe(true);
    const ids = report.table.map((r) => r.id);
    for (const id of scenarios) expect(ids).toContain(id);
    for (const row of report.table) {
      expect(row.rps, row.id).toBeGreaterThan(0);
      expect(row.non2xx + row.errors, row.id).toBe(0);
    }
    // The scale check's direct D1 + KV seeding ran (tokens written around the API still exchange).
    expect(report.scale.rpsBase).toBeGreaterThan(0);
    expect(report.scale.rpsBigSpread).toBeGreaterThan(0);
    // The cron over that store, under both bounds: every due token expired, and reconcile finds
    // the directly written store as the write path would have left it (nothing to repair).
    const cron = report.scale.cron!;
    expect(Object.keys(cron)).toEqual(["default", "paid-plan"]);
    for (const [profile, c] of Object.entries(cron)) {
      expect(c.expiry.runs, profile).toBeGreaterThan(0);
      expect(c.expiry.totals.processed, profile).toBe(c.expiring);
      expect(c.expiredLeft, profile).toBe(0);
      expect(c.reconcile.runs, profile).toBeGreaterThan(0);
      expect(c.reconcile.totals.accountsResynced ?? 0, profile).toBe(0);
      expect(c.reconcile.totals.orphansDeleted ?? 0, profile).toBe(0);
    }
    // The smoke makes 600 due: the default bounds stop a run at 400 (the subrequest budget), the
    // paid plan's take them in one.
    expect(cron.default!.expiry.runs).toBe(2);
    expect(cron.default!.expiry.stoppedBy.subrequests).toBe(1);
    expect(cron["paid-plan"]!.expiry.runs).toBe(1);
  }, 150_000);
});

/** `npm run bench:loop`: a short run (the loop fails on any non-2xx answer inside the isolate). */
describe("the in-isolate loop's smoke", () => {
  it("replays the three scenarios through the Worker's fetch and prints µs per request", async () => {
    const { code, stdout, stderr } = await runScript("bench-loop.ts", [], { LOOP_ROUNDS: "1", LOOP_N: "300" }, 100_000);
    expect(code, `${stdout}\n${stderr}`).toBe(0);
    for (const label of ["GET /healthz", "POST /api/auth/access-tokens/jwt", "/oauth/token client_secret_basic"]) {
      expect(stdout).toMatch(new RegExp(`${label.replace(/[/.]/g, "\\$&")}\\s+\\d+\\.\\d`));
    }
  }, 110_000);
});
