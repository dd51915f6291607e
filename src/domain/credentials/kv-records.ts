import type { PublicKeyAlg } from "../../db/schema.ts";

/**
 * The KV side of credentials (the layout is documented in docs/architecture.md, "KV layout"). KV only ever holds hashes
 * and public material. D1 is the source of truth; the account's Durable Object writes both.
 *
 *   tok:<sha256 hex of an access token>  -> TokenRecord   (expires with the secret)
 *   sa:<account id>                      -> AccountRecord (claims + public keys, for private_key_jwt)
 *   jti:<jti>                            -> "1"           (revoked JWT, expires with the JWT)
 *   revoked-token:<access token id>      -> "1"           (revoked access token: every JWT minted from it,
 *                                                          directly or by RFC 8693 exchange, is dead; kept
 *                                                          as long as the longest JWT could live)
 *   signing:keyset                       -> the signing keys (private halves AES-GCM wrapped)
 *   fed-jwks:<issuer URL>                -> an external issuer's public keys (issuer-keys.ts)
 */

/** What a JWT says about an account, denormalized so that no hot path reads D1. */
export interface AccountClaims {
  accountId: string;
  orgId: string | null;
  status: "active" | "disabled";
  expiresAt: number | null;
  platformPermissions: string[];
  groups: string[];
  /** Names of the roles the account holds in its org. */
  roles: string[];
  /** Every scope the account may request: its operations plus its allowed scopes. */
  scopes: string[];
  /** Networks (CIDRs) the credentials may be used from; empty for anywhere. */
  allowedCidrs: string[];
  /** The only OAuth client authentication a platform client may use; null allows any. */
  tokenEndpointAuthMethod: string | null;
  /** Every JWT of the account must be DPoP-bound (absent in records written before it: false). */
  requireDpop?: boolean | undefined;
}

export interface TokenRecord {
  tokenId: string;
  /** Epoch ms after which this secret is dead (token expiry, or the end of a regenerate grace). */
  expiresAt: number | null;
  /** Epoch ms when the token itself expires (the bound on JWTs minted from it). */
  tokenExpiresAt: number | null;
  account: AccountClaims;
}

export interface AccountKey {
  kid: string;
  alg: PublicKeyAlg;
  jwk: Record<string, unknown>;
}

export interface AccountRecord {
  account: AccountClaims;
  keys: AccountKey[];
}

/** KV refuses expirations closer than 60 s; a record may outlive its secret there, never in our checks. */
export const KV_MIN_TTL_SECONDS = 60;

export const tokenKey = (secretHash: string) => `tok:${secretHash}`;
export const accountKey = (accountId: string) => `sa:${accountId}`;
export const revokedJtiKey = (jti: string) => `jti:${jti}`;
export const revokedTokenKey = (tokenId: string) => `revoked-token:${tokenId}`;
export const KEYSET_KEY = "signing:keyset";

/** The `expiration` (epoch seconds) for a KV put, or undefined for none; clamped to KV's minimum. */
export function kvExpiration(expiresAtMs: number | null, nowMs: number): number | undefined {
  if (expiresAtMs === null) return undefined;
  const seconds = Math.ceil(expiresAtMs / 1000);
  return Math.max(seconds, Math.ceil(nowMs / 1000) + KV_MIN_TTL_SECONDS);
}

/** Why an account's credentials no longer work, or null when they do. */
export function accountDeadReason(account: AccountClaims, nowMs: number): string | null {
  if (account.status !== "active") return "account disabled";
  if (account.expiresAt !== null && account.expiresAt <= nowMs) return "account expired";
  return null;
}

/** Why a stored record no longer authenticates, or null when it does. KV expiry is lazy, so this re-checks. */
export function deadReason(record: TokenRecord, nowMs: number): string | null {
  if (record.expiresAt !== null && record.expiresAt <= nowMs) return "token expired";
  return accountDeadReason(record.account, nowMs);
}

/** When credentials derived from this record stop being valid (the earliest of secret, token and account). */
export function credentialExpiry(record: TokenRecord): number | null {
  const times = [record.expiresAt, record.tokenExpiresAt, record.account.expiresAt].filter((t): t is number => t !== null);
  return times.length > 0 ? Math.min(...times) : null;
}
