import { and, asc, eq, gt, inArray, or } from "drizzle-orm";
import { accessTokens } from "../db/schema.ts";
import { syncAccounts } from "../domain/account-do.ts";
import { isTokenLive } from "../domain/credentials.ts";
import { tokenKey, type TokenRecord } from "../domain/kv-records.ts";
import { MAX_OBJECT_CALLS, type Job } from "./types.ts";

const CURSOR_KEY = "cron:reconcile";

interface Cursors {
  /** The last token id checked from D1's side. */
  d1: string;
  /** KV's list cursor over `tok:` keys. */
  kv: string | null;
}

/**
 * D1 is the source of truth. From D1's side: every live token must have its KV record (a missing or
 * stale one is rewritten by the account's Durable Object, which first finishes any journaled change,
 * so a revocation in flight is never undone). From KV's side: every `tok:` entry must be backed by an
 * active row holding that hash, else it is deleted. Both sides resume where the last run stopped.
 */
export const reconcile: Job = async (ctx, { batchSize }) => {
  const now = ctx.now();
  const cursors = (await ctx.env.TOKENS.get<Cursors>(CURSOR_KEY, "json")) ?? { d1: "", kv: null };

  // D1 -> KV
  const rows = await ctx.db
    .select()
    .from(accessTokens)
    .where(and(eq(accessTokens.status, "active"), gt(accessTokens.id, cursors.d1)))
    .orderBy(asc(accessTokens.id))
    .limit(batchSize);
  const stale = new Set<string>();
  await Promise.all(
    rows
      .filter((t) => isTokenLive(t, now))
      .map(async (t) => {
        const record = await ctx.env.TOKENS.get<TokenRecord>(tokenKey(t.secretHash), "json");
        if (!record || record.tokenId !== t.id || record.expiresAt !== t.expiresAt) stale.add(t.accountId);
      }),
  );
  const repairedAccounts = [...stale].slice(0, MAX_OBJECT_CALLS);
  await syncAccounts(ctx, repairedAccounts);
  const d1Done = rows.length < batchSize && stale.size <= MAX_OBJECT_CALLS;
  const nextD1 = d1Done ? "" : stale.size > MAX_OBJECT_CALLS ? cursors.d1 : rows.at(-1)!.id;

  // KV -> D1
  const listed = await ctx.env.TOKENS.list({ prefix: "tok:", limit: Math.min(batchSize, 1000), cursor: cursors.kv ?? undefined });
  const hashes = listed.keys.map((k) => k.name.slice(4));
  let orphans: string[] = [];
  if (hashes.length > 0) {
    const backed = await ctx.db
      .select({ current: accessTokens.secretHash, previous: accessTokens.previousSecretHash })
      .from(accessTokens)
      .where(and(eq(accessTokens.status, "active"), or(inArray(accessTokens.secretHash, hashes), inArray(accessTokens.previousSecretHash, hashes))));
    const known = new Set(backed.flatMap((b) => [b.current, b.previous]));
    orphans = hashes.filter((h) => !known.has(h));
    await Promise.all(orphans.map((h) => ctx.env.TOKENS.delete(tokenKey(h))));
  }
  const kvDone = listed.list_complete;
  await ctx.env.TOKENS.put(CURSOR_KEY, JSON.stringify({ d1: nextD1, kv: kvDone ? null : listed.cursor } satisfies Cursors));
  return {
    processed: rows.length + hashes.length,
    more: !d1Done || !kvDone,
    accountsResynced: repairedAccounts.length,
    orphansDeleted: orphans.length,
  };
};
