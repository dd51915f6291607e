import type { JwtQuota, PublicKeyAlg } from "../../db/schema.ts";

/**
 * The KV side of credentials (the layout is documented in docs/architecture.md, "KV layout"). KV only ever holds hashes
 * and public material. D1 is the source of truth; the account's Durable Object writes both.
 *
 *   tok:<sha256 hex of an access token>  -> TokenRecord   (expires with the secret)
 *   sa:<account id>                      -> AccountRecord (claims, active public keys, jwksUri: private_key_jwt)
 *   jti:<jti>                            -> "1"           (revoked JWT, expires with the JWT)
 *   revoked-token:<access token id>      -> "1"           (revoked access token: every JWT minted from it,
 *                                                          directly or by RFC 8693 exchange, is dead; kept
 *                                                          as long as the longest JWT could live)
 *   signing:keyset                       -> the signing keys (private halves AES-GCM wrapped)
 *   fed-jwks:<issuer URL>                -> an external issuer's public keys (issuer-keys.ts)
 *   client-jwks:<jwksUri>                -> an account's own published public keys (client-jwks.ts)
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
  /** The account's own JWT quota; absent: its org policy's default (src/domain/issuance/jwt-quota.ts). */
  jwtQuota?: JwtQuota | undefined;
  /**
   * Set by the credential resolver for an access token with its own scopes or networks (never
   * stored in the account's record): the token's scopes narrow the account's in any org, and its
   * networks apply beside the account's.
   */
  tokenScopes?: string[] | undefined;
  tokenCidrs?: string[] | undefined;
  /**
   * The org's custom claims for this account (policy.jwtClaims applied to it), computed when the
   * record is written so that minting reads nothing; absent in records written before them.
   */
  customClaims?: Record<string, string>;
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
  /** The token's own scopes; absent: the account's. At use, the token may do what both allow. */
  scopes?: string[] | undefined;
  /** The token's own networks; absent: the account's. At use, both apply. */
  allowedCidrs?: string[] | undefined;
  /**
   * Whether the token has a use limit: every use then asks the account's Durable Object, which
   * counts (this record, cached or not, never lets a used-up token through).
   */
  limitedUses?: true | undefined;
  /** The token's status list index (docs/status-list.md); absent in a record written before the lists. */
  statusIdx?: number | undefined;
}

export interface AccountKey {
  kid: string;
  alg: PublicKeyAlg;
  jwk: Record<string, unknown>;
  /** The key's status list index; absent in a record written before the lists. */
  statusIdx?: number | undefined;
  /** Epoch ms after which the key no longer authenticates (KV is lazy: checked at use); absent or null for never. */
  expiresAt?: number | null | undefined;
}

export interface AccountRecord {
  account: AccountClaims;
  /** The active keys only: a disabled or expired key is dropped from the record. */
  keys: AccountKey[];
  /** The account's own JWKS URL, whose keys also authenticate it (after the registered ones). */
  jwksUri?: string | undefined;
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
