import type { AccessToken } from "../../db/schema.ts";
import { cidrContains, parseCidr } from "../../lib/cidr.ts";
import type { AccountClaims, TokenRecord } from "./kv-records.ts";

/**
 * A token's own restrictions (docs/tokens.md, "Per-token restrictions"): scopes within its
 * account's, networks within its account's, and a number of uses with an optional refill. The
 * checks at creation run in the account's Durable Object (planIssue), against the account as D1
 * has it then; the checks at use run in the credential resolver.
 */

export const REFILL_INTERVALS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
export type RefillInterval = keyof typeof REFILL_INTERVALS;

export interface TokenRestrictions {
  scopes?: string[] | undefined;
  allowedCidrs?: string[] | undefined;
  remainingUses?: number | undefined;
  refill?: { amount: number; interval?: RefillInterval | undefined; intervalSeconds?: number | undefined } | undefined;
}

/** The columns of access_tokens that hold the restrictions. */
export type RestrictionColumns = Pick<AccessToken, "scopes" | "allowedCidrs" | "remainingUses" | "maxUses" | "refillAmount" | "refillIntervalMs" | "lastRefillAt">;

export const UNRESTRICTED: RestrictionColumns = {
  scopes: null,
  allowedCidrs: null,
  remainingUses: null,
  maxUses: null,
  refillAmount: null,
  refillIntervalMs: null,
  lastRefillAt: null,
};

export type RestrictionCheck = { ok: true; columns: RestrictionColumns } | { ok: false; code: "token_scope_not_allowed" | "token_cidr_not_allowed" | "validation_failed"; detail: string };

/** Whether every address of `inner` lies within `outer`. */
function cidrWithin(inner: string, outer: string): boolean {
  const a = parseCidr(inner);
  const b = parseCidr(outer);
  return a !== null && b !== null && a.bytes.length === b.bytes.length && a.prefix >= b.prefix && cidrContains(b, a.bytes);
}

/**
 * The restrictions' columns, or why they are refused: a scope the account may not request
 * (token_scope_not_allowed), a network outside every one of the account's when it has any
 * (token_cidr_not_allowed). `claims` are the account's claims at creation.
 */
export function checkRestrictions(input: TokenRestrictions, claims: AccountClaims, now: number): RestrictionCheck {
  const columns: RestrictionColumns = { ...UNRESTRICTED };
  if (input.scopes !== undefined) {
    const held = new Set(claims.scopes);
    const outside = input.scopes.filter((s) => !held.has(s));
    if (outside.length > 0) return { ok: false, code: "token_scope_not_allowed", detail: `Not within what the account may request: ${outside.join(" ")}` };
    columns.scopes = [...new Set(input.scopes)].sort();
  }
  if (input.allowedCidrs !== undefined) {
    const accountCidrs = claims.allowedCidrs ?? [];
    const outside = accountCidrs.length === 0 ? [] : input.allowedCidrs.filter((c) => !accountCidrs.some((o) => cidrWithin(c, o)));
    if (outside.length > 0) return { ok: false, code: "token_cidr_not_allowed", detail: `Not within the account's networks (${accountCidrs.join(", ")}): ${outside.join(", ")}` };
    columns.allowedCidrs = [...new Set(input.allowedCidrs)];
  }
  if (input.refill && input.remainingUses === undefined) {
    return { ok: false, code: "validation_failed", detail: "refill needs remainingUses (the uses before the first refill)" };
  }
  if (input.remainingUses !== undefined) {
    columns.remainingUses = input.remainingUses;
    columns.maxUses = Math.max(input.remainingUses, input.refill?.amount ?? 0);
  }
  if (input.refill) {
    const intervalMs = input.refill.interval ? REFILL_INTERVALS[input.refill.interval] : (input.refill.intervalSeconds ?? 0) * 1000;
    if (intervalMs <= 0 || (input.refill.interval && input.refill.intervalSeconds !== undefined)) {
      return { ok: false, code: "validation_failed", detail: "refill takes interval (minute, hour, day) or intervalSeconds, one of them" };
    }
    columns.refillAmount = input.refill.amount;
    columns.refillIntervalMs = intervalMs;
    columns.lastRefillAt = now;
  }
  return { ok: true, columns };
}

/** The restriction fields of a token's KV record (absent when unrestricted, so old records read the same). */
export function recordRestrictions(token: AccessToken): Pick<TokenRecord, "scopes" | "allowedCidrs" | "limitedUses"> {
  return {
    ...(token.scopes ? { scopes: token.scopes } : {}),
    ...(token.allowedCidrs ? { allowedCidrs: token.allowedCidrs } : {}),
    ...(token.remainingUses !== null && token.remainingUses !== undefined ? { limitedUses: true as const } : {}),
  };
}

/**
 * The claims a token acts with: its account's, narrowed by the token's own scopes (the
 * intersection with what the account holds now) and networks (both lists apply: the account's
 * stay in `allowedCidrs`, the token's in `tokenCidrs`).
 */
export function narrowedClaims(record: TokenRecord): AccountClaims {
  if (!record.scopes && !record.allowedCidrs) return record.account;
  const account = { ...record.account };
  if (record.scopes) {
    const own = new Set(record.scopes);
    account.scopes = account.scopes.filter((s) => own.has(s));
    account.tokenScopes = record.scopes;
  }
  if (record.allowedCidrs) account.tokenCidrs = record.allowedCidrs;
  return account;
}

/** The count of uses a Durable Object keeps for a limited token. */
export interface UseCounter {
  remaining: number;
  refillAmount: number | null;
  refillIntervalMs: number | null;
  lastRefillAt: number | null;
}

/** The counter after the refills due by `now` (lazily: each whole interval passed sets it back to the amount). */
export function refilled(counter: UseCounter, now: number): UseCounter {
  const { refillAmount, refillIntervalMs, lastRefillAt } = counter;
  if (refillAmount === null || !refillIntervalMs || lastRefillAt === null || now - lastRefillAt < refillIntervalMs) return counter;
  const periods = Math.floor((now - lastRefillAt) / refillIntervalMs);
  return { ...counter, remaining: refillAmount, lastRefillAt: lastRefillAt + periods * refillIntervalMs };
}

/** What a use of a limited token got: accepted (with what remains), and whether it was the last. */
export interface UseOutcome {
  accepted: boolean;
  remaining: number;
  /** This use took the last one (the exhaustion is audited once, with it). */
  exhausted: boolean;
}
