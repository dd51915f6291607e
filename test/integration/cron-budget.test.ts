import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { runJobs, subrequestsOf } from "../../src/cron/index.ts";
import { platformRoot } from "../helpers.ts";
import { DAY_MS, jobResult } from "./lifecycle-helpers.ts";
import { freshOrg, viewerAccount } from "./token-helpers.ts";

/**
 * A scheduled run repeats a job's batches while it is within its bounds (time, items,
 * subrequests), stops with `more: true` when one is spent, and the next run resumes.
 */

let orgId: string;
let accountId: string;
beforeAll(async () => {
  const root = await platformRoot();
  const o = await freshOrg(root.token);
  orgId = o.org.id;
  accountId = (await viewerAccount(o.adminToken, o.org.id)).id;
});

/** `n` active tokens past their expiry, straight into D1. */
async function seedExpired(label: string, n: number) {
  const now = Date.now();
  const insert = env.DB.prepare(
    "insert into access_tokens (id, account_id, org_id, name, secret_hash, hint, status, expires_at, created_at, created_by) values (?, ?, ?, ?, ?, 'sat_seed…seed', 'active', ?, ?, 'budget-test')",
  );
  for (let i = 0; i < n; i += 500) {
    const part = Array.from({ length: Math.min(500, n - i) }, (_, j) => i + j);
    await env.DB.batch(part.map((k) => insert.bind(`tok_${label}${String(k).padStart(5, "0")}`, accountId, orgId, label, `${label}-${k}-${crypto.randomUUID()}`, now - 60_000 - (n - k) * 1000, now - DAY_MS)));
  }
}

const expiredOf = async (label: string) =>
  (await env.DB.prepare("select count(*) as n from access_tokens where status = 'expired' and id like ?").bind(`tok_${label}%`).first<{ n: number }>())!.n;

const run = (o: { maxItems?: number; timeBudgetMs?: number; subrequestBudget?: number }) =>
  runJobs(env, { jobs: ["expireTokens"], batchSize: 100, timeBudgetMs: 60_000, maxItems: 100_000, subrequestBudget: 10_000, ...o });

describe("a scheduled run's bounds", () => {
  it("item cap: 1,000 expired tokens, batches of 100, 300 a run: a full pass takes ceil(1000/300) = 4 runs, each resuming", async () => {
    await seedExpired("cap", 1000);
    const runs: { processed: number; more: boolean; batches: number; stoppedBy: string | null }[] = [];
    for (let i = 0; i < 8; i++) {
      const s = await run({ maxItems: 300 });
      const r = jobResult(s, "expireTokens");
      runs.push({ processed: r.processed, more: r.more, batches: r.batches as number, stoppedBy: s.stoppedBy });
      expect(s.items, JSON.stringify(s)).toBe(r.processed);
      expect(s.itemsPerSecond).toBeTypeOf("number");
      expect(await expiredOf("cap"), `after run ${i + 1}`).toBe(Math.min(1000, (i + 1) * 300));
      if (!r.more) break;
    }
    expect(runs, JSON.stringify(runs)).toEqual([
      { processed: 300, more: true, batches: 3, stoppedBy: "items" },
      { processed: 300, more: true, batches: 3, stoppedBy: "items" },
      { processed: 300, more: true, batches: 3, stoppedBy: "items" },
      { processed: 100, more: false, batches: 2, stoppedBy: null },
    ]);
    expect(runs.length).toBe(Math.ceil(1000 / 300));
  });

  it("time budget spent: one batch, more: true, and the next run goes on from there", async () => {
    await seedExpired("tb", 350);
    const first = await run({ timeBudgetMs: 0 });
    expect(jobResult(first, "expireTokens"), JSON.stringify(first)).toMatchObject({ processed: 100, more: true, batches: 1 });
    expect(first.stoppedBy).toBe("time");
    expect(await expiredOf("tb")).toBe(100);
    const second = await run({ timeBudgetMs: 0 });
    expect(jobResult(second, "expireTokens")).toMatchObject({ processed: 100, more: true });
    expect(await expiredOf("tb")).toBe(200);
    const rest = await run({});
    expect(jobResult(rest, "expireTokens"), JSON.stringify(rest)).toMatchObject({ processed: 150, more: false, batches: 2 });
    expect(rest.stoppedBy).toBeNull();
    expect(await expiredOf("tb")).toBe(350);
  });

  it("subrequest budget spent: stops after the batches that fit, more: true", async () => {
    await seedExpired("sr", 500);
    const s = await run({ subrequestBudget: 2 * subrequestsOf(100) });
    expect(jobResult(s, "expireTokens"), JSON.stringify(s)).toMatchObject({ processed: 200, more: true, batches: 2 });
    expect(s.stoppedBy).toBe("subrequests");
    expect(jobResult(await run({}), "expireTokens")).toMatchObject({ processed: 300, more: false });
    expect(await expiredOf("sr")).toBe(500);
  });
});
