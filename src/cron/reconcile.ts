import { and, asc, eq, gt, inArray, or, sql } from "drizzle-orm";
import { chunks, SQL_IN_CHUNK } from "../lib/chunks.ts";
import { accessTokens, publicKeys, serviceAccounts, type AccessToken, type ServiceAccount } from "../db/schema.ts";
import { syncAccounts } from "../domain/credentials/account-object.ts";
import { isTokenLive } from "../domain/credentials/plans.ts";
import { accountKey, tokenKey, type AccountRecord, type TokenRecord } from "../domain/credentials/kv-records.ts";
import { MAX_OBJECT_CALLS, type Job } from "./types.ts";

const CURSOR_KEY = "cron:reconcile";

interface Cursors {
  /** The last token id checked from D1's side. */
  d1: string;
  /** KV's list cursor over `tok:` keys. */
  kv: string | null;
  /** Whether each side finished its sweep in the current cycle (a cycle ends when both have). */
  d1Swept: boolean;
  kvSwept: boolean;
}

/**
 * `status = 'active'` with the unary `+`, which keeps SQLite from using the (status, expires_at)
 * index for it: the D1 side then walks the primary key from its cursor (no sort of every active
 * row), the KV side looks the hashes up by their own indexes (no scan of every active row).
 */
const activeNoIndex = sql`+${accessTokens.status} = 'active'`;

const sameList = (a: string[] | undefined, b: string[]) => JSON.stringify([...(a ?? [])].sort()) === JSON.stringify([...b].sort());

/** Whether a secret's KV record says what D1 says about it, its token and its account (what decides access). */
function matches(record: TokenRecord | null, token: AccessToken, account: ServiceAccount, secretExpiresAt: number | null): boolean {
  return (
    record !== null &&
    record.tokenId === token.id &&
    record.expiresAt === secretExpiresAt &&
    record.tokenExpiresAt === token.expiresAt &&
    // A record written before the status lists has no index: rewriting it puts the status claim in its JWTs.
    record.statusIdx !== undefined &&
    record.account.status === account.status &&
    record.account.expiresAt === account.expiresAt &&
    sameList(record.account.allowedCidrs, account.allowedCidrs) &&
    sameList(record.account.groups, account.groups) &&
    (record.account.requireDpop ?? false) === (account.requireDpop ?? false)
  );
}

/**
 * D1 is the source of truth. From D1's side: every live token must have a KV record that agrees
 * with D1 on the token and its account (else the account's Durable Object rewrites its records,
 * after finishing any journaled change, so a revocation in flight is never undone). From KV's
 * side: every `tok:` entry must be backed by an active row holding that hash, else it is deleted.
 * Both sides resume from cursors; `more` is false once both have swept everything in this cycle.
 */
export const reconcile: Job = async (ctx, { batchSize }) => {
  const now = ctx.now();
  const saved = await ctx.env.TOKENS.get<Cursors>(CURSOR_KEY, "json");
  const cursors: Cursors = saved && saved.d1Swept !== undefined ? saved : { d1: "", kv: null, d1Swept: false, kvSwept: false };

  // D1 -> KV
  const rows = await ctx.db
    .select({ token: accessTokens, account: serviceAccounts })
    .from(accessTokens)
    .innerJoin(serviceAccounts, eq(serviceAccounts.id, accessTokens.accountId))
    .where(and(activeNoIndex, gt(accessTokens.id, cursors.d1)))
    .orderBy(asc(accessTokens.id))
    .limit(batchSize);
  const stale = new Set<string>();
  await Promise.all(
    rows
      .filter(({ token }) => isTokenLive(token, now))
      .map(async ({ token, account }) => {
        const record = await ctx.env.TOKENS.get<TokenRecord>(tokenKey(token.secretHash), "json");
        if (!matches(record, token, account, token.expiresAt)) stale.add(account.id);
        const grace = token.previousSecretHash && token.previousSecretExpiresAt && token.previousSecretExpiresAt > now ? token.previousSecretHash : null;
        if (grace) {
          const previous = await ctx.env.TOKENS.get<TokenRecord>(tokenKey(grace), "json");
          if (!matches(previous, token, account, token.previousSecretExpiresAt)) stale.add(account.id);
        }
      }),
  );
  // The accounts' own records (claims and keys, read by JWT bearer and private_key_jwt).
  const accounts = [...new Map(rows.map(({ account }) => [account.id, account])).values()].filter((a) => !stale.has(a.id));
  const keyRows = (await Promise.all(chunks(accounts.map((a) => a.id)).map((ids) => ctx.db.select({ accountId: publicKeys.accountId, kid: publicKeys.kid }).from(publicKeys).where(and(inArray(publicKeys.accountId, ids), eq(publicKeys.status, "active")))))).flat();
  await Promise.all(
    accounts.map(async (account) => {
      const record = await ctx.env.TOKENS.get<AccountRecord>(accountKey(account.id), "json");
      const kids = keyRows.filter((k) => k.accountId === account.id).map((k) => k.kid);
      const agrees =
        record !== null &&
        record.account.status === account.status &&
        record.account.expiresAt === account.expiresAt &&
        (record.jwksUri ?? null) === account.jwksUri &&
        sameList(record.keys.map((k) => k.kid), kids);
      if (!agrees) stale.add(account.id);
    }),
  );
  const repaired = [...stale].slice(0, MAX_OBJECT_CALLS);
  await syncAccounts(ctx, repaired);
  const d1Done = rows.length < batchSize && stale.size <= MAX_OBJECT_CALLS;
  // With more stale accounts than one run may repair, the same page is looked at again next run.
  const nextD1 = d1Done ? "" : stale.size > MAX_OBJECT_CALLS ? cursors.d1 : rows.at(-1)!.token.id;

  // KV -> D1
  const listed = await ctx.env.TOKENS.list({ prefix: "tok:", limit: Math.min(batchSize, 1000), cursor: cursors.kv ?? undefined });
  const hashes = listed.keys.map((k) => k.name.slice(4));
  let orphans: string[] = [];
  if (hashes.length > 0) {
    // Each hash is bound twice: chunks keep a statement under D1's 100 bound parameters.
    const backed = await Promise.all(
      chunks(hashes, SQL_IN_CHUNK / 2).map((part) =>
        ctx.db
          .select({ current: accessTokens.secretHash, previous: accessTokens.previousSecretHash })
          .from(accessTokens)
          .where(and(activeNoIndex, or(inArray(accessTokens.secretHash, part), inArray(accessTokens.previousSecretHash, part)))),
      ),
    );
    const known = new Set(backed.flat().flatMap((b) => [b.current, b.previous]));
    orphans = hashes.filter((h) => !known.has(h));
    await Promise.all(orphans.map((h) => ctx.env.TOKENS.delete(tokenKey(h))));
  }
  const kvDone = listed.list_complete;

  const d1Swept = cursors.d1Swept || d1Done;
  const kvSwept = cursors.kvSwept || kvDone;
  const cycleDone = d1Swept && kvSwept;
  const next: Cursors = {
    d1: nextD1,
    kv: kvDone ? null : listed.cursor,
    d1Swept: cycleDone ? false : d1Swept,
    kvSwept: cycleDone ? false : kvSwept,
  };
  await ctx.env.TOKENS.put(CURSOR_KEY, JSON.stringify(next));
  return { processed: rows.length + hashes.length, more: !cycleDone, accountsResynced: repaired.length, orphansDeleted: orphans.length };
};
