import { eq, sql } from "drizzle-orm";
import { orgs, usageCounters, type JwtQuota } from "../../db/schema.ts";
import { TtlCache } from "../../lib/ttl-cache.ts";
import type { MaybePromise } from "../../lib/maybe-promise.ts";
import type { AccountClaims } from "../credentials/kv-records.ts";
import { hourOf } from "../credentials/usage.ts";
import { DomainError } from "../shared/errors.ts";
import type { Ctx } from "../shared/context.ts";
import { isolateState } from "../shared/isolate-state.ts";

/**
 * JWT issuance quotas (docs/quotas.md): at most `perMinute` and `perDay` JWTs for an account, its
 * own quota or else its org policy's default. Counted without a Durable Object or a D1 write per
 * JWT, so the bounds are per isolate and stated here:
 *   perMinute  a fixed 60 s window per account in this isolate: with k isolates serving an
 *              account, it may get up to k x perMinute JWTs in a minute;
 *   perDay     the JWTs D1 has counted in the last 24 hourly buckets (usage_counters, written by
 *              usage.ts at most a minute late per isolate), read at most once a minute per account
 *              here, plus what this isolate issued since that read: the account may overshoot by
 *              what its other isolates issued in the last minute or two.
 * A change of an org's default reaches each isolate within ORG_DEFAULT_TTL_MS (it is read from D1
 * at most that often per org per isolate); an account's own quota is in its KV record.
 */

const MINUTE_MS = 60_000;
const DAY_READ_EVERY_MS = 60_000;
export const ORG_DEFAULT_TTL_MS = 60_000;
const MAX_ENTRIES = 10_000;

interface Window {
  start: number;
  count: number;
}

interface DayCount {
  /** JWTs D1 knew of at the read. */
  recorded: number;
  /** JWTs this isolate issued since. */
  since: number;
}

const quotas = isolateState("jwt-quotas", () => ({
  minutes: new TtlCache<Window>(MINUTE_MS, MAX_ENTRIES),
  days: new TtlCache<DayCount>(DAY_READ_EVERY_MS, MAX_ENTRIES),
  orgDefaults: new TtlCache<{ quota: JwtQuota | null }>(ORG_DEFAULT_TTL_MS, MAX_ENTRIES),
}));

const quotaIn = (q: JwtQuota | null | undefined): JwtQuota | null => (q && (q.perMinute !== undefined || q.perDay !== undefined) ? q : null);

function orgDefault(ctx: Ctx, orgId: string | null): MaybePromise<JwtQuota | null> {
  if (orgId === null) return null;
  const cached = quotas.orgDefaults.get(orgId, ctx.now());
  if (cached) return cached.quota;
  return ctx.db
    .select({ policy: orgs.policy })
    .from(orgs)
    .where(eq(orgs.id, orgId))
    .get()
    .then((row) => {
      const quota = quotaIn(row?.policy.jwtQuota);
      quotas.orgDefaults.set(orgId, { quota }, ctx.now());
      return quota;
    });
}

async function readDay(ctx: Ctx, accountId: string): Promise<DayCount> {
  const hour = hourOf(ctx.now());
  const row = await ctx.db
    .select({ n: sql<number>`coalesce(sum(${usageCounters.exchanges}), 0)` })
    .from(usageCounters)
    .where(sql`${usageCounters.accountId} = ${accountId} and ${usageCounters.hour} > ${hour - 24}`)
    .get();
  const day = { recorded: Number(row?.n ?? 0), since: 0 };
  quotas.days.set(accountId, day, ctx.now());
  return day;
}

const exceeded = (limit: number, resetSeconds: number, windowSeconds: number, what: string) =>
  new DomainError("jwt_quota_exceeded", `The account may be issued at most ${limit} JWTs ${what}; try again in ${resetSeconds} s`, {
    retryAfterSeconds: resetSeconds,
    rateLimit: { limit, remaining: 0, resetSeconds, windowSeconds },
  });

/**
 * Counts one JWT against the account's quota, or throws jwt_quota_exceeded (429, with Retry-After
 * and the RateLimit headers). Synchronous when nothing needs reading: an account without a quota
 * in an org whose default this isolate knows costs no promise.
 */
export function takeJwtQuota(ctx: Ctx, account: AccountClaims): MaybePromise<void> {
  const own = quotaIn(account.jwtQuota);
  if (own) return take(ctx, account.accountId, own);
  const fallback = orgDefault(ctx, account.orgId);
  if (fallback instanceof Promise) return fallback.then((q) => (q ? take(ctx, account.accountId, q) : undefined));
  return fallback ? take(ctx, account.accountId, fallback) : undefined;
}

function take(ctx: Ctx, accountId: string, quota: JwtQuota): MaybePromise<void> {
  if (quota.perDay === undefined) return count(ctx, accountId, quota, null);
  const day = quotas.days.get(accountId, ctx.now());
  return day ? count(ctx, accountId, quota, day) : readDay(ctx, accountId).then((d) => count(ctx, accountId, quota, d));
}

/** Checks both windows, then counts in both: no await between, so this isolate never over-issues. */
function count(ctx: Ctx, accountId: string, quota: JwtQuota, day: DayCount | null): void {
  const now = ctx.now();
  let minute = quotas.minutes.get(accountId, now);
  if (!minute || now - minute.start >= MINUTE_MS) minute = { start: now, count: 0 };
  if (quota.perMinute !== undefined && minute.count >= quota.perMinute) {
    throw exceeded(quota.perMinute, Math.max(1, Math.ceil((minute.start + MINUTE_MS - now) / 1000)), 60, "a minute");
  }
  if (day && quota.perDay !== undefined && day.recorded + day.since >= quota.perDay) {
    // The day is 24 hourly buckets: the oldest leaves the window at the next hour.
    throw exceeded(quota.perDay, Math.max(1, Math.ceil(((hourOf(now) + 1) * 3_600_000 - now) / 1000)), 86_400, "a day");
  }
  minute.count += 1;
  if (quota.perMinute !== undefined) quotas.minutes.set(accountId, minute, minute.start);
  if (day) day.since += 1;
}
