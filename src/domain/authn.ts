import type { Bindings } from "../env.ts";
import { TtlCache } from "../lib/ttl-cache.ts";
import type { MaybePromise } from "../lib/maybe-promise.ts";
import { ApiError } from "../errors.ts";
import { hashToken, isWellFormedAccessToken, TOKEN_PREFIX } from "./access-token.ts";
import type { Ctx } from "./context.ts";
import { verifyJwt } from "./jwt.ts";
import { accountDeadReason, accountKey, credentialExpiry, deadReason, tokenKey, type AccountRecord, type TokenRecord } from "./kv-records.ts";
import { networkAllowed } from "./network.ts";
import type { Principal } from "./principal.ts";
import { failureKeys, guarded } from "./rate-limit.ts";
import { recordUse } from "./usage.ts";

export const unauthenticated = (detail: string) =>
  new ApiError("unauthenticated", detail, { headers: { "www-authenticate": 'Bearer realm="keyward"' } });

/** The credential of an `Authorization: Bearer` header, or a 401. */
export function bearerCredential(header: string | undefined): string {
  const match = /^Bearer[ ]+([\x21-\x7e]{1,8192})[ ]*$/i.exec(header ?? "");
  if (!match) throw unauthenticated("Send Authorization: Bearer <access token or JWT>");
  return match[1]!;
}

/**
 * Token records seen by this isolate, for TOKEN_CACHE_TTL_MS. A change made through this isolate
 * evicts them at once (forgetCredentials); a change made elsewhere reaches this isolate within the
 * TTL on top of KV's own propagation (README, "Consistency guarantees"). Unknown tokens are not
 * cached, so a token issued elsewhere works here at once.
 */
export const TOKEN_CACHE_TTL_MS = 10_000;
const records = new TtlCache<TokenRecord>(TOKEN_CACHE_TTL_MS, 10_000);

/**
 * Bumped by every eviction. A KV read that was in flight when a change evicted records may return
 * the record from before the change: it is cached only if no eviction happened meanwhile, so a
 * stale record never comes back into the cache after its eviction.
 */
let evictions = 0;

/** Evicts the cached records of a token, or of every token of an account. */
export function forgetCredentials(match: { tokenId?: string; accountId?: string }): void {
  evictions++;
  records.evictWhere((r) => r.tokenId === match.tokenId || r.account.accountId === match.accountId);
  if (match.accountId) accounts.delete(match.accountId);
}

/**
 * Resolves an access token to the record that makes it valid. Garbage and typos fail the
 * checksum before any lookup; a valid-looking token costs one KV read at most (no D1 on this path).
 */
export function verifyAccessToken(env: Bindings, token: string, now: number): MaybePromise<TokenRecord | null> {
  if (!isWellFormedAccessToken(token)) return null;
  const hash = hashToken(token);
  const cached = records.get(hash, now);
  // A cached record is answered at once: no promise on the hot path.
  if (cached) return liveToken(cached, now);
  const generation = evictions;
  return env.TOKENS.get<TokenRecord>(tokenKey(hash), "json").then((record) => {
    if (!record) return null;
    if (generation === evictions) records.set(hash, record, now);
    return liveToken(record, now);
  });
}

const liveToken = (record: TokenRecord, now: number) => (deadReason(record, now) === null ? record : null);

const accounts = new TtlCache<AccountRecord>(TOKEN_CACHE_TTL_MS, 10_000);

/** The KV record of a live account (claims and public keys), or null; cached like token records. */
export async function liveAccountRecord(env: Bindings, accountId: string, now: number): Promise<AccountRecord | null> {
  if (!/^sa_[0-9A-Za-z]{1,64}$/.test(accountId)) return null;
  let record = accounts.get(accountId, now);
  if (!record) {
    const generation = evictions;
    record = (await env.TOKENS.get<AccountRecord>(accountKey(accountId), "json")) ?? undefined;
    if (record && generation === evictions) accounts.set(accountId, record, now);
  }
  return record && accountDeadReason(record.account, now) === null ? record : null;
}

/**
 * Authenticates a bearer credential (an access token, or a JWT we issued for our own audience)
 * into a principal, or throws 401 (one message for every failure).
 */
export function authenticate(ctx: Ctx, header: string | undefined): MaybePromise<Principal> {
  return guarded(ctx, () => failureKeys(ctx), isUnauthenticated, () => authenticateOnce(ctx, header));
}

export const isUnauthenticated = (err: unknown) => err instanceof ApiError && err.code === "unauthenticated";

async function authenticateOnce(ctx: Ctx, header: string | undefined): Promise<Principal> {
  const credential = bearerCredential(header);
  const now = ctx.now();
  if (credential.startsWith(TOKEN_PREFIX)) {
    const record = await verifyAccessToken(ctx.env, credential, now);
    if (record && networkAllowed(ctx, record.account)) {
      recordUse(ctx, { accountId: record.account.accountId, tokenId: record.tokenId });
      return {
        accountId: record.account.accountId,
        orgId: record.account.orgId,
        platformPermissions: record.account.platformPermissions,
        credential: { type: "access_token", tokenId: record.tokenId },
        expiresAt: credentialExpiry(record),
      };
    }
  } else {
    const jwt = await verifyJwt(ctx, credential, ctx.config.ISSUER);
    const account = jwt ? await liveAccountRecord(ctx.env, jwt.sub, now) : null;
    if (jwt && account && networkAllowed(ctx, account.account)) {
      recordUse(ctx, { accountId: jwt.sub });
      return {
        accountId: jwt.sub,
        orgId: account.account.orgId,
        platformPermissions: account.account.platformPermissions,
        credential: { type: "jwt", jti: jwt.jti },
        scopeLimit: (jwt.scope ?? "").split(" ").filter(Boolean),
        orgLimit: jwt.org_id,
        expiresAt: jwt.exp * 1000,
      };
    }
  }
  throw unauthenticated("The credential is invalid, expired or revoked");
}
