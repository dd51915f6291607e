/**
 * The cron over the scale check's store: expiry of a slice of its tokens, then reconcile, each as a
 * sequence of runs through POST /api/v1/admin/jobs/run (the scheduled handler's own function,
 * with the configured bounds on time, items and subrequests), one run at a time as the schedule
 * makes them. Reports the items per run and per second, what stopped each run, and the runs a full
 * pass needs: measured for expiry, computed from the store's size for reconcile.
 */
import type { Miniflare } from "miniflare";
import type { RunSummary } from "../../src/cron/index.ts";
import { api } from "./seed.ts";
import type { Log } from "./lifecycle.ts";

type D1 = Awaited<ReturnType<Miniflare["getD1Database"]>>;

export interface JobPass {
  runs: number;
  items: number;
  /** Items over the runs' own durations (the time between runs is the schedule's). */
  itemsPerSecond: number;
  itemsPerRun: number;
  maxRunMs: number;
  stoppedBy: Record<string, number>;
  /** The job's counters, summed over the runs. */
  totals: Record<string, number>;
}

async function runJob(base: string, rootToken: string, job: string, maxRuns: number, until: (r: RunSummary) => boolean): Promise<JobPass> {
  const summaries: RunSummary[] = [];
  for (let i = 0; i < maxRuns; i++) {
    const summary = await api<RunSummary>(base, "POST", "/api/v1/admin/jobs/run", rootToken, { jobs: [job] }, [200]);
    if ("error" in (summary.jobs[job] ?? {})) throw new Error(`${job} failed: ${JSON.stringify(summary.jobs[job])}`);
    summaries.push(summary);
    if (until(summary)) break;
  }
  // A run that found nothing to do ends the pass and is not one of its runs.
  const working = summaries.filter((r) => r.items > 0);
  const items = working.reduce((s, r) => s + r.items, 0);
  const ms = working.reduce((s, r) => s + r.durationMs, 0);
  const stoppedBy: Record<string, number> = {};
  const totals: Record<string, number> = {};
  for (const r of working) {
    stoppedBy[r.stoppedBy ?? "done"] = (stoppedBy[r.stoppedBy ?? "done"] ?? 0) + 1;
    for (const [k, v] of Object.entries(r.jobs[job] ?? {})) if (typeof v === "number") totals[k] = (totals[k] ?? 0) + v;
  }
  const runs = working.length;
  return { runs, items, itemsPerSecond: ms > 0 ? Math.round((items * 1000) / ms) : 0, itemsPerRun: runs ? Math.round(items / runs) : 0, maxRunMs: Math.max(0, ...working.map((r) => r.durationMs)), stoppedBy, totals };
}

/**
 * Expires `expiring` of the store's directly written tokens (their expiry set in the past, as if
 * it came due) and runs expireTokens until nothing is left; then `reconcileRuns` reconcile runs,
 * and the runs a full reconcile cycle needs over the active rows and as many `tok:` keys.
 */
export async function runCronCheck(base: string, rootToken: string, db: D1, opts: { expiring: number; reconcileRuns: number; log: Log }) {
  const now = Date.now();
  const before = await db.prepare("SELECT count(*) AS n FROM access_tokens WHERE status = 'active'").first<{ n: number }>();
  // As many as asked for, of those still active (a small store's second profile may have fewer).
  const made = await db
    .prepare("UPDATE access_tokens SET expires_at = ? WHERE id IN (SELECT id FROM access_tokens WHERE status = 'active' AND name = 'bench-seed' ORDER BY id LIMIT ?)")
    .bind(now - 60_000, opts.expiring)
    .run();
  const expiring = made.meta.changes;
  const expiry = await runJob(base, rootToken, "expireTokens", 10_000, (r) => r.items === 0);
  const left = await db.prepare("SELECT count(*) AS n FROM access_tokens WHERE status = 'active' AND expires_at <= ?").bind(now).first<{ n: number }>();
  opts.log(`cron: expireTokens took ${expiry.runs} runs; ${left?.n ?? "?"} tokens still due`);
  const reconcile = await runJob(base, rootToken, "reconcile", opts.reconcileRuns, () => false);
  const active = (before?.n ?? 0) - (expiry.totals.processed ?? 0);
  // A cycle walks every active row from D1's side and every `tok:` key from KV's (one per live token).
  const reconcileRunsPerPass = Math.ceil((2 * active) / Math.max(1, reconcile.itemsPerRun));
  opts.log(`cron: ${reconcile.runs} reconcile runs, ${reconcile.itemsPerRun} items a run`);

  return { activeBefore: before?.n ?? null, active, expiring, expiredLeft: left?.n ?? null, expiry, reconcile, reconcileRunsPerPass };
}

export type CronCheck = Awaited<ReturnType<typeof runCronCheck>>;
