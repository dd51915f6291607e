import { createCtx } from "../domain/shared/context.ts";
import type { Bindings } from "../env.ts";
import { expireAccounts } from "./expire-accounts.ts";
import { expireTokens } from "./expire-tokens.ts";
import { expireKeys } from "./expire-keys.ts";
import { purge } from "./purge.ts";
import { reconcile } from "./reconcile.ts";
import { revokeUnused } from "./revoke-unused.ts";
import { rotateKeys } from "./rotate-keys.ts";
import { expiryNotices } from "./expiry-notices.ts";
import { webhookOutbox } from "./webhook-outbox.ts";
import type { Job, JobResult } from "./types.ts";

/** The jobs of one run, in order. Each is idempotent and handles at most one batch. */
export const JOBS: Record<string, Job> = { expireTokens, expireAccounts, expireKeys, revokeUnused, reconcile, purge, rotateKeys, expiryNotices, webhookOutbox };

export interface RunOptions {
  /** The clock (tests advance it). */
  now?: () => number;
  batchSize?: number;
  jobs?: string[];
  /** Overrides of CRON_TIME_BUDGET_MS, CRON_MAX_ITEMS and CRON_SUBREQUEST_BUDGET. */
  timeBudgetMs?: number;
  maxItems?: number;
  subrequestBudget?: number;
}

/** Subrequests one batch of `processed` items may have made (a KV or D1 call per item and two, plus the cursor and query). */
export const subrequestsOf = (processed: number): number => 2 * processed + 4;

export interface RunSummary {
  jobs: Record<string, JobResult | { error: string }>;
  durationMs: number;
  /** Items handled by all jobs, and items per second over the run. */
  items: number;
  itemsPerSecond: number;
  /** Why the run stopped repeating batches, if a bound did stop it. */
  stoppedBy: "time" | "items" | "subrequests" | null;
}

/**
 * One scheduled run: every job at least one batch, in order, a failing job not stopping the
 * others; a job with `more` goes on with further batches while the run is within its time budget,
 * its item cap and its subrequest budget (all shared by the jobs), and otherwise leaves the rest
 * to the next run (jobs resume by query or by cursor). One structured summary line in the log.
 */
export async function runJobs(env: Bindings, options: RunOptions = {}): Promise<RunSummary> {
  const started = Date.now();
  const ctx = createCtx(env, { actorId: "system", requestId: null, ip: null, userAgent: null });
  if (options.now) ctx.now = options.now;
  const batchSize = options.batchSize ?? ctx.config.CRON_BATCH_SIZE;
  const timeBudgetMs = options.timeBudgetMs ?? ctx.config.CRON_TIME_BUDGET_MS;
  // A caller that sizes the batch without an item cap asks for one batch a job (as before the cap).
  const maxItems = options.maxItems ?? (options.batchSize !== undefined ? options.batchSize : ctx.config.CRON_MAX_ITEMS);
  const subrequestBudget = options.subrequestBudget ?? ctx.config.CRON_SUBREQUEST_BUDGET;
  const jobs: RunSummary["jobs"] = {};
  let items = 0;
  let subrequests = 0;
  let stoppedBy: RunSummary["stoppedBy"] = null;
  /** Whether another batch fits in what is left of the run, else which bound is spent. */
  const bound = (): RunSummary["stoppedBy"] =>
    Date.now() - started >= timeBudgetMs ? "time" : items + batchSize > maxItems ? "items" : subrequests + subrequestsOf(batchSize) > subrequestBudget ? "subrequests" : null;
  for (const [name, job] of Object.entries(JOBS)) {
    if (options.jobs && !options.jobs.includes(name)) continue;
    try {
      let total: JobResult | null = null;
      for (;;) {
        const r = await job(ctx, { batchSize });
        items += r.processed;
        subrequests += subrequestsOf(r.processed);
        total = total ? merge(total, r) : { ...r, batches: 1 };
        if (!r.more || r.processed === 0) break;
        const spent = bound();
        if (spent) {
          stoppedBy = spent;
          break;
        }
      }
      jobs[name] = total;
    } catch (err) {
      jobs[name] = { error: String((err as Error)?.message ?? err) };
    }
  }
  const durationMs = Date.now() - started;
  const summary: RunSummary = { jobs, durationMs, items, itemsPerSecond: durationMs > 0 ? Math.round((items * 1000) / durationMs) : items, stoppedBy };
  console.log(JSON.stringify({ level: "info", event: "cron.run", ...summary }));
  return summary;
}

/** Two batches' results as one: counts added, `more` from the later batch. */
function merge(a: JobResult, b: JobResult): JobResult {
  const out: JobResult = { ...a, more: b.more, batches: (a.batches as number) + 1 };
  for (const [k, v] of Object.entries(b)) if (k !== "more" && typeof v === "number") out[k] = ((a[k] as number | undefined) ?? 0) + v;
  return out;
}
