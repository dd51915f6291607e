import { eq, inArray, sql } from "drizzle-orm";
import { accessTokens, serviceAccounts, usageCounters } from "../db/schema.ts";
import type { Ctx } from "./context.ts";

/**
 * lastUsedAt and exchange counts without a D1 write per request: each isolate buffers uses and
 * writes an account's at most once a minute, off the response path (waitUntil). An isolate that
 * dies loses at most a minute of counts; lastUsedAt is accurate to the minute.
 */
const FLUSH_EVERY_MS = 60_000;
const MAX_BUFFERED = 10_000;

interface Pending {
  tokenIds: Set<string>;
  exchanges: number;
  lastFlush: number;
}

const buffer = new Map<string, Pending>();

export interface Use {
  accountId: string;
  tokenId?: string | undefined;
  /** A JWT was issued. */
  exchange?: boolean;
}

export const hourOf = (ms: number) => Math.floor(ms / 3_600_000);

export function recordUse(ctx: Ctx, use: Use): void {
  const now = ctx.now();
  if (buffer.size > MAX_BUFFERED) buffer.clear();
  let pending = buffer.get(use.accountId);
  if (!pending) buffer.set(use.accountId, (pending = { tokenIds: new Set(), exchanges: 0, lastFlush: 0 }));
  if (use.tokenId) pending.tokenIds.add(use.tokenId);
  if (use.exchange) pending.exchanges += 1;
  if (now - pending.lastFlush < FLUSH_EVERY_MS) return;
  const { tokenIds, exchanges } = pending;
  pending.tokenIds = new Set();
  pending.exchanges = 0;
  pending.lastFlush = now;
  ctx.waitUntil(flush(ctx, use.accountId, [...tokenIds], exchanges, now).catch((err) => console.error(JSON.stringify({ level: "warn", event: "usage_flush_failed", error: String(err) }))));
}

async function flush(ctx: Ctx, accountId: string, tokenIds: string[], exchanges: number, now: number) {
  await ctx.db.batch([
    ctx.db.update(serviceAccounts).set({ lastUsedAt: now }).where(eq(serviceAccounts.id, accountId)),
    ctx.db.update(accessTokens).set({ lastUsedAt: now }).where(inArray(accessTokens.id, tokenIds.length ? tokenIds : [""])),
    ctx.db
      .insert(usageCounters)
      .values({ accountId, hour: hourOf(now), exchanges })
      .onConflictDoUpdate({ target: [usageCounters.accountId, usageCounters.hour], set: { exchanges: sql`${usageCounters.exchanges} + ${exchanges}` } }),
  ]);
}

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

/** Test hook: forget what this isolate buffered. */
export function resetUsageBuffer(): void {
  buffer.clear();
}
