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
}

export interface RunSummary {
  jobs: Record<string, JobResult | { error: string }>;
  durationMs: number;
}

/**
 * One scheduled run: every job once, a failing job not stopping the others, and one structured
 * summary line in the log.
 */
export async function runJobs(env: Bindings, options: RunOptions = {}): Promise<RunSummary> {
  const started = Date.now();
  const ctx = createCtx(env, { actorId: "system", requestId: null, ip: null, userAgent: null });
  if (options.now) ctx.now = options.now;
  const batchSize = options.batchSize ?? ctx.config.CRON_BATCH_SIZE;
  const jobs: RunSummary["jobs"] = {};
  for (const [name, job] of Object.entries(JOBS)) {
    if (options.jobs && !options.jobs.includes(name)) continue;
    try {
      jobs[name] = await job(ctx, { batchSize });
    } catch (err) {
      jobs[name] = { error: String((err as Error)?.message ?? err) };
    }
  }
  const summary = { jobs, durationMs: Date.now() - started };
  console.log(JSON.stringify({ level: "info", event: "cron.run", ...summary }));
  return summary;
}
