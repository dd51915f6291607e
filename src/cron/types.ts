import type { Ctx } from "../domain/shared/context.ts";

/** What one run of a job did: items handled, and whether a backlog remains for the next run. */
export interface JobResult {
  processed: number;
  more: boolean;
  [detail: string]: number | boolean;
}

export interface JobOptions {
  /** The most items one run handles (D1 rows, KV keys); Durable Object calls are capped lower. */
  batchSize: number;
}

export type Job = (ctx: Ctx, options: JobOptions) => Promise<JobResult>;

/** Durable Object calls are subrequests: a run makes at most this many per job. */
export const MAX_OBJECT_CALLS = 50;
