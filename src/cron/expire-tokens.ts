import { and, asc, eq, isNotNull, lte } from "drizzle-orm";
import { accessTokens } from "../db/schema.ts";
import { auditInsert } from "../domain/audit/audit-log.ts";
import { tokenKey } from "../domain/credentials/kv-records.ts";
import type { Job } from "./types.ts";

/**
 * Marks tokens past their expiry `expired`, deleting their KV entries first (KV's own TTL is only a
 * backstop, and reads re-check expiry anyway). Conditional updates keep it idempotent and safe
 * beside the account's Durable Object, which never revives an expired token.
 */
export const expireTokens: Job = async (ctx, { batchSize }) => {
  const now = ctx.now();
  const rows = await ctx.db
    .select()
    .from(accessTokens)
    .where(and(eq(accessTokens.status, "active"), isNotNull(accessTokens.expiresAt), lte(accessTokens.expiresAt, now)))
    .orderBy(asc(accessTokens.expiresAt))
    .limit(batchSize);
  if (rows.length === 0) return { processed: 0, more: false };
  await Promise.all(
    rows.flatMap((t) => [t.secretHash, t.previousSecretHash].filter((h): h is string => !!h).map((h) => ctx.env.TOKENS.delete(tokenKey(h)))),
  );
  const [first, ...rest] = rows.flatMap((t) => [
    ctx.db
      .update(accessTokens)
      .set({ status: "expired", previousSecretHash: null, previousSecretExpiresAt: null })
      .where(and(eq(accessTokens.id, t.id), eq(accessTokens.status, "active"))),
    auditInsert(ctx, { action: "access_token.expired", orgId: t.orgId, targetType: "access_token", targetId: t.id, details: { accountId: t.accountId, hint: t.hint, expiresAt: t.expiresAt } }),
  ]);
  await ctx.db.batch([first!, ...rest]);
  return { processed: rows.length, more: rows.length === batchSize };
};
