import { sql } from "drizzle-orm";
import { accessTokens, serviceAccounts, usageCounters } from "../../db/schema.ts";
import type { Ctx } from "../shared/context.ts";
import { isolateState } from "../shared/isolate-state.ts";

/**
 * lastUsedAt and exchange counts without a D1 write per request: each isolate buffers every use
 * and writes them all at most once a minute (one batch), off the response path (waitUntil). A
 * token or account is therefore written at most once a minute per isolate, however many accounts
 * are in use; what an isolate buffered is written with its next flush (the first use after the
 * minute), and lost if the isolate ends first.
 */
const FLUSH_EVERY_MS = 60_000;
const MAX_BUFFERED = 10_000;
/** Accounts per statement: each id list is one JSON parameter of ~30 bytes an id. */
const ACCOUNTS_PER_STATEMENT = 1_000;

interface Pending {
  tokenIds: Set<string>;
  exchanges: number;
}

const usage = isolateState("usage-buffer", () => ({ buffer: new Map<string, Pending>(), lastFlush: 0 }));

export interface Use {
  accountId: string;
  tokenId?: string | undefined;
  /** A JWT was issued. */
  exchange?: boolean;
}

export const hourOf = (ms: number) => Math.floor(ms / 3_600_000);

export function recordUse(ctx: Ctx, use: Use): void {
  const now = ctx.now();
  let pending = usage.buffer.get(use.accountId);
  if (!pending && usage.buffer.size < MAX_BUFFERED) usage.buffer.set(use.accountId, (pending = { tokenIds: new Set(), exchanges: 0 }));
  if (pending && use.tokenId) pending.tokenIds.add(use.tokenId);
  if (pending && use.exchange) pending.exchanges += 1;
  if (now - usage.lastFlush < FLUSH_EVERY_MS) return;
  usage.lastFlush = now;
  const uses = [...usage.buffer];
  usage.buffer.clear();
  ctx.waitUntil(flush(ctx, uses, now).catch((err) => console.error(JSON.stringify({ level: "warn", event: "usage_flush_failed", error: String(err) }))));
}

/**
 * Writes a flush as a few set-based statements (the ids travel as one JSON array per statement),
 * not two per account: a flush of 10,000 accounts was 20,000 UPDATEs, seconds of the isolate's CPU
 * spent while it served. lastUsedAt only moves forward (another isolate may have written a later one).
 */
async function flush(ctx: Ctx, uses: [string, Pending][], now: number) {
  for (let i = 0; i < uses.length; i += ACCOUNTS_PER_STATEMENT) {
    const chunk = uses.slice(i, i + ACCOUNTS_PER_STATEMENT);
    const accountIds = JSON.stringify(chunk.map(([accountId]) => accountId));
    const tokenIds = JSON.stringify(chunk.flatMap(([, p]) => [...p.tokenIds]));
    const counts = JSON.stringify(chunk.filter(([, p]) => p.exchanges > 0).map(([accountId, p]) => [accountId, p.exchanges]));
    await ctx.db.batch([
      touch(ctx, serviceAccounts, accountIds, now),
      touch(ctx, accessTokens, tokenIds, now),
      ctx.db
        .insert(usageCounters)
        .select(sql`select json_extract(value, '$[0]'), ${hourOf(now)}, json_extract(value, '$[1]') from json_each(${counts}) where true`)
        .onConflictDoUpdate({ target: [usageCounters.accountId, usageCounters.hour], set: { exchanges: sql`${usageCounters.exchanges} + excluded.exchanges` } }),
    ]);
  }
}

const touch = (ctx: Ctx, table: typeof serviceAccounts | typeof accessTokens, ids: string, now: number) =>
  ctx.db
    .update(table)
    .set({ lastUsedAt: sql`max(coalesce(${table.lastUsedAt}, 0), ${now})` })
    .where(sql`${table.id} in (select value from json_each(${ids}))`);

/** Exchanges in the last 24 hours and 30 days (hourly buckets). */
export async function exchangeCounts(ctx: Ctx, accountId: string): Promise<{ exchanges24h: number; exchanges30d: number }> {
  const hour = hourOf(ctx.now());
  const row = await ctx.db
    .select({
      day: sql<number>`coalesce(sum(case when ${usageCounters.hour} > ${hour - 24} then ${usageCounters.exchanges} end), 0)`,
      month: sql<number>`coalesce(sum(${usageCounters.exchanges}), 0)`,
    })
    .from(usageCounters)
    .where(sql`${usageCounters.accountId} = ${accountId} and ${usageCounters.hour} > ${hour - 720}`)
    .get();
  return { exchanges24h: Number(row?.day ?? 0), exchanges30d: Number(row?.month ?? 0) };
}
