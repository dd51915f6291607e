import { and, eq } from "drizzle-orm";
import { accessTokens } from "../../db/schema.ts";
import type { Ctx } from "../shared/context.ts";
import { auditInsert } from "../audit/audit-log.ts";
import { statement, type Change } from "./change.ts";
import { refilled, type UseCounter, type UseOutcome } from "./token-limits.ts";

/**
 * The use counts of tokens with a use limit, as the account's Durable Object keeps them: the live
 * count in the object's storage (taken under its lock, so N uses never give more than N
 * successes), mirrored into D1 after each use for display and review. Only the object calls these.
 */

/** A counter as the object stores it: the count and what the audit event of its exhaustion names. */
export interface StoredCounter extends UseCounter {
  accountId: string;
  orgId: string | null;
  hint: string;
}

/** The counter of a token from its D1 row (the first use this object sees), or null when it has no limit or is not active. */
export async function loadCounter(ctx: Ctx, accountId: string, tokenId: string): Promise<StoredCounter | null> {
  const row = await ctx.db
    .select()
    .from(accessTokens)
    .where(and(eq(accessTokens.id, tokenId), eq(accessTokens.accountId, accountId)))
    .get();
  if (!row || row.status !== "active" || row.remainingUses === null) return null;
  return {
    accountId,
    orgId: row.orgId,
    hint: row.hint,
    remaining: row.remainingUses,
    refillAmount: row.refillAmount,
    refillIntervalMs: row.refillIntervalMs,
    lastRefillAt: row.lastRefillAt,
  };
}

/** Takes one use: the counter after it, the outcome, and the D1 writes that mirror it (with the exhaustion's audit event). */
export function takeUse(ctx: Ctx, tokenId: string, stored: StoredCounter): { counter: StoredCounter; outcome: UseOutcome; change: Change | null } {
  const before = { ...stored, ...refilled(stored, ctx.now()) };
  const refilledNow = before.lastRefillAt !== stored.lastRefillAt;
  if (before.remaining <= 0) {
    return { counter: before, outcome: { accepted: false, remaining: 0, exhausted: false }, change: refilledNow ? mirror(ctx, tokenId, before, false) : null };
  }
  const counter = { ...before, remaining: before.remaining - 1 };
  const exhausted = counter.remaining === 0;
  return { counter, outcome: { accepted: true, remaining: counter.remaining, exhausted }, change: mirror(ctx, tokenId, counter, exhausted) };
}

function mirror(ctx: Ctx, tokenId: string, counter: StoredCounter, exhausted: boolean): Change {
  const d1 = [statement(ctx.db.update(accessTokens).set({ remainingUses: counter.remaining, lastRefillAt: counter.lastRefillAt }).where(eq(accessTokens.id, tokenId)))];
  if (exhausted) {
    d1.push(
      statement(
        auditInsert(ctx, {
          action: "access_token.exhausted",
          orgId: counter.orgId,
          targetType: "access_token",
          targetId: tokenId,
          details: { accountId: counter.accountId, hint: counter.hint, refillsAt: counter.refillIntervalMs && counter.lastRefillAt !== null ? new Date(counter.lastRefillAt + counter.refillIntervalMs).toISOString() : null },
        }),
      ),
    );
  }
  return { kvBefore: [], d1, kvAfter: [] };
}
