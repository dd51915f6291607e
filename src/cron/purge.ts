import { lt, sql } from "drizzle-orm";
import { auditEvents, usageCounters } from "../db/schema.ts";
import { hourOf } from "../domain/credentials/usage.ts";
import type { Job } from "./types.ts";

const DAY_MS = 86_400_000;

/**
 * Purges audit events past AUDIT_RETENTION_DAYS and usage counters past 31 days. (Revoked-JWT
 * entries expire in KV with their JWT; assertion replay caches are purged by each account's
 * Durable Object alarm.)
 */
export const purge: Job = async (ctx, { batchSize }) => {
  const cutoff = ctx.now() - ctx.config.AUDIT_RETENTION_DAYS * DAY_MS;
  const audit = await ctx.db.run(
    sql`delete from ${auditEvents} where ${auditEvents.id} in (select ${auditEvents.id} from ${auditEvents} where ${auditEvents.createdAt} < ${cutoff} limit ${batchSize})`,
  );
  const usage = await ctx.db.delete(usageCounters).where(lt(usageCounters.hour, hourOf(ctx.now()) - 31 * 24));
  const auditPurged = audit.meta.changes ?? 0;
  return { processed: auditPurged, more: auditPurged === batchSize, auditPurged, usagePurged: usage.meta.changes ?? 0 };
};
