import { and, eq, isNotNull, sql } from "drizzle-orm";
import { accessTokens, orgs } from "../db/schema.ts";
import { accountObject } from "../domain/credentials/account-object.ts";
import { MAX_OBJECT_CALLS, type Job } from "./types.ts";

const DAY_MS = 86_400_000;

/** Revokes tokens unused for the org policy's `unusedTokenRevokeAfterDays` (off unless an org sets it). */
export const revokeUnused: Job = async (ctx, { batchSize }) => {
  const now = ctx.now();
  const limit = Math.min(batchSize, MAX_OBJECT_CALLS);
  const days = sql<number>`json_extract(${orgs.policy}, '$.unusedTokenRevokeAfterDays')`;
  const rows = await ctx.db
    .select({ id: accessTokens.id, accountId: accessTokens.accountId })
    // orgs first (a CROSS JOIN keeps SQLite's order): only the orgs with the policy, then their
    // candidates by access_tokens_org_unused, instead of every active token on every run.
    .from(orgs)
    .crossJoin(accessTokens)
    .where(
      and(
        eq(orgs.id, accessTokens.orgId),
        eq(accessTokens.status, "active"),
        isNotNull(days),
        sql`coalesce(${accessTokens.lastUsedAt}, ${accessTokens.createdAt}) <= ${now} - ${days} * ${DAY_MS}`,
      ),
    )
    .limit(limit);
  for (const t of rows) {
    await accountObject(ctx, t.accountId).revokeToken(t.accountId, t.id, ctx.meta, "unused");
  }
  return { processed: rows.length, more: rows.length === limit };
};
