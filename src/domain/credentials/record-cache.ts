import type { Bindings } from "../../env.ts";
import type { MaybePromise } from "../../lib/maybe-promise.ts";
import { TtlCache } from "../../lib/ttl-cache.ts";
import { hashToken, isWellFormedAccessToken } from "./access-token.ts";
import { accountDeadReason, accountKey, deadReason, tokenKey, type AccountRecord, type TokenRecord } from "./kv-records.ts";
import { isolateState } from "../shared/isolate-state.ts";

/**
 * The KV records that make credentials valid, as this isolate reads them: token records by secret
 * hash and account records by id, each cached for TOKEN_CACHE_TTL_MS. Only the credential resolver
 * (src/domain/credential-resolver.ts) and the account's Durable Object stub (which evicts) use them.
 */

/**
 * Token records seen by this isolate, for TOKEN_CACHE_TTL_MS. A change made through this isolate
 * evicts them at once (forgetCredentials); a change made elsewhere reaches this isolate within the
 * TTL on top of KV's own propagation (docs/architecture.md, "Consistency bounds"). Unknown tokens are not
 * cached, so a token issued elsewhere works here at once.
 */
export const TOKEN_CACHE_TTL_MS = 10_000;
/**
 * KV's colo cache for these reads (`cacheTtl`, seconds): a token used every few minutes is then read
 * hot in its colo instead of cold from KV's central stores (docs/performance.md, "Production latency
 * model"). It bounds how long a change made elsewhere can go unseen in a colo (docs/architecture.md,
 * "Consistency bounds").
 */
export const KV_RECORD_CACHE_TTL_S = 300;
const cache = isolateState("credential-records", () => ({
  tokens: new TtlCache<TokenRecord>(TOKEN_CACHE_TTL_MS, 10_000),
  accounts: new TtlCache<AccountRecord>(TOKEN_CACHE_TTL_MS, 10_000),
  /**
   * Bumped by every eviction. A KV read that was in flight when a change evicted records may return
   * the record from before the change: it is cached only if no eviction happened meanwhile, so a
   * stale record never comes back into the cache after its eviction.
   */
  evictions: 0,
}));

/** Evicts the cached records of a token, or of every token of an account. */
export function forgetCredentials(match: { tokenId?: string; accountId?: string }): void {
  cache.evictions++;
  cache.tokens.evictWhere((r) => r.tokenId === match.tokenId || r.account.accountId === match.accountId);
  if (match.accountId) cache.accounts.delete(match.accountId);
}

/**
 * Resolves an access token to the record that makes it valid. Garbage and typos fail the
 * checksum before any lookup; a valid-looking token costs one KV read at most (no D1 on this path).
 */
export function verifyAccessToken(env: Bindings, token: string, now: number): MaybePromise<TokenRecord | null> {
  if (!isWellFormedAccessToken(token)) return null;
  const hash = hashToken(token);
  const cached = cache.tokens.get(hash, now);
  // A cached record answers at once, without a promise.
  if (cached) return liveToken(cached, now);
  const generation = cache.evictions;
  return env.TOKENS.get<TokenRecord>(tokenKey(hash), { type: "json", cacheTtl: KV_RECORD_CACHE_TTL_S }).then((record) => {
    if (!record) return null;
    if (generation === cache.evictions) cache.tokens.set(hash, record, now);
    return liveToken(record, now);
  });
}

const liveToken = (record: TokenRecord, now: number) => (deadReason(record, now) === null ? record : null);

/** The KV record of a live account (claims and public keys), or null; cached like token cache.tokens. */
export async function liveAccountRecord(env: Bindings, accountId: string, now: number): Promise<AccountRecord | null> {
  if (!/^sa_[0-9A-Za-z]{1,64}$/.test(accountId)) return null;
  let record = cache.accounts.get(accountId, now);
  if (!record) {
    const generation = cache.evictions;
    record = (await env.TOKENS.get<AccountRecord>(accountKey(accountId), { type: "json", cacheTtl: KV_RECORD_CACHE_TTL_S })) ?? undefined;
    if (record && generation === cache.evictions) cache.accounts.set(accountId, record, now);
  }
  return record && accountDeadReason(record.account, now) === null ? record : null;
}
