import { eq, sql } from "drizzle-orm";
import { accessTokens, serviceAccounts, usageCounters } from "../db/schema.ts";
import type { Ctx } from "./context.ts";

/**
 * lastUsedAt and exchange counts without a D1 write per request: each isolate buffers every use
 * and writes them all at most once a minute (one batch), off the response path (waitUntil). A
 * token or account is therefore written at most once a minute per isolate, however many accounts
 * are in use; what an isolate buffered is written with its next flush (the first use after the
 * minute), and lost if the isolate ends first.
 */
const FLUSH_EVERY_MS = 60_000;
const MAX_BUFFERED = 10_000;
const ACCOUNTS_PER_BATCH = 25;

interface Pending {
  tokenIds: Set<string>;
  exchanges: number;
}

const buffer = new Map<string, Pending>();
let lastFlush = 0;

export interface Use {
  accountId: string;
  tokenId?: string | undefined;
  /** A JWT was issued. */
  exchange?: boolean;
}

export const hourOf = (ms: number) => Math.floor(ms / 3_600_000);

export function recordUse(ctx: Ctx, use: Use): void {
  const now = ctx.now();
  let pending = buffer.get(use.accountId);
  if (!pending && buffer.size < MAX_BUFFERED) buffer.set(use.accountId, (pending = { tokenIds: new Set(), exchanges: 0 }));
  if (pending && use.tokenId) pending.tokenIds.add(use.tokenId);
  if (pending && use.exchange) pending.exchanges += 1;
  if (now - lastFlush < FLUSH_EVERY_MS) return;
  lastFlush = now;
  const uses = [...buffer];
  buffer.clear();
  ctx.waitUntil(flush(ctx, uses, now).catch((err) => console.error(JSON.stringify({ level: "warn", event: "usage_flush_failed", error: String(err) }))));
}

async function flush(ctx: Ctx, uses: [string, Pending][], now: number) {
  for (let i = 0; i < uses.length; i += ACCOUNTS_PER_BATCH) {
    const statements = uses.slice(i, i + ACCOUNTS_PER_BATCH).flatMap(([accountId, { tokenIds, exchanges }]) => [
      ctx.db.update(serviceAccounts).set({ lastUsedAt: now }).where(eq(serviceAccounts.id, accountId)),
      ...[...tokenIds].map((id) => ctx.db.update(accessTokens).set({ lastUsedAt: now }).where(eq(accessTokens.id, id))),
      ...(exchanges > 0
        ? [
            ctx.db
              .insert(usageCounters)
              .values({ accountId, hour: hourOf(now), exchanges })
              .onConflictDoUpdate({ target: [usageCounters.accountId, usageCounters.hour], set: { exchanges: sql`${usageCounters.exchanges} + ${exchanges}` } }),
          ]
        : []),
    ]);
    const [first, ...rest] = statements;
    if (first) await ctx.db.batch([first, ...rest]);
  }
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

/** Test hook: forget what this isolate buffered, and flush at the next use. */
export function resetUsageBuffer(): void {
  buffer.clear();
  lastFlush = 0;
}
