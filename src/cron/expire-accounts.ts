import { and, eq, exists, isNotNull, lte, sql } from "drizzle-orm";
import { accessTokens, serviceAccounts } from "../db/schema.ts";
import { accountObject } from "../domain/credentials/account-object.ts";
import { MAX_OBJECT_CALLS, type Job } from "./types.ts";

/** Accounts past their validity (`daysValid` / `expiresAt`) lose every token, through their Durable Object. */
export const expireAccounts: Job = async (ctx, { batchSize }) => {
  const now = ctx.now();
  const limit = Math.min(batchSize, MAX_OBJECT_CALLS);
  const rows = await ctx.db
    .select({ id: serviceAccounts.id })
    .from(serviceAccounts)
    .where(
      and(
        isNotNull(serviceAccounts.expiresAt),
        lte(serviceAccounts.expiresAt, now),
        exists(ctx.db.select({ one: sql`1` }).from(accessTokens).where(and(eq(accessTokens.accountId, serviceAccounts.id), eq(accessTokens.status, "active")))),
      ),
    )
    .limit(limit);
  let revoked = 0;
  for (const { id } of rows) {
    const outcome = await accountObject(ctx, id).revokeAll(id, "account expired");
    if (outcome.ok) revoked += outcome.value.revoked;
  }
  return { processed: rows.length, more: rows.length === limit, revoked };
};
