import { and, asc, eq, isNotNull, lte } from "drizzle-orm";
import { publicKeys } from "../db/schema.ts";
import { accountObject } from "../domain/credentials/account-object.ts";
import { MAX_OBJECT_CALLS, type Job } from "./types.ts";

/**
 * Public keys past their expiresAt become `expired` (audit `public_key.expired`, the `key.expired`
 * webhook), through their account's Durable Object, which rewrites the KV record without them.
 * private_key_jwt already refuses them at use; this makes the state visible and final.
 */
export const expireKeys: Job = async (ctx, { batchSize }) => {
  const now = ctx.now();
  const limit = Math.min(batchSize, MAX_OBJECT_CALLS);
  const rows = await ctx.db
    .selectDistinct({ accountId: publicKeys.accountId })
    .from(publicKeys)
    .where(and(eq(publicKeys.status, "active"), isNotNull(publicKeys.expiresAt), lte(publicKeys.expiresAt, now)))
    .orderBy(asc(publicKeys.accountId))
    .limit(limit);
  let expired = 0;
  for (const { accountId } of rows) {
    const outcome = await accountObject(ctx, accountId).expireKeys(accountId, now);
    if (outcome.ok) expired += outcome.value.expired;
  }
  return { processed: rows.length, more: rows.length === limit, expired };
};
