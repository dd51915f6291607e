/**
 * The KV side of credentials. Layout (documented in the README):
 *   tok:<sha256 hex of an access token secret>  ->  TokenRecord, expiring with the token
 * KV only ever holds hashes. D1 is the source of truth; the account's Durable Object writes both.
 */
export interface TokenRecord {
  tokenId: string;
  accountId: string;
  orgId: string | null;
  /** Epoch ms after which this secret is dead (token expiry, or the end of a regenerate grace). */
  expiresAt: number | null;
  accountStatus: "active" | "disabled";
  accountExpiresAt: number | null;
  /** Platform-wide operations of platform-level accounts (empty for org accounts). */
  platformPermissions: string[];
}

/** KV refuses expirations closer than 60 s; a record may outlive its secret there, never in our checks. */
export const KV_MIN_TTL_SECONDS = 60;

export const tokenKey = (secretHash: string) => `tok:${secretHash}`;

/** The `expiration` (epoch seconds) for a KV put, or undefined for none; clamped to KV's minimum. */
export function kvExpiration(expiresAtMs: number | null, nowMs: number): number | undefined {
  if (expiresAtMs === null) return undefined;
  const seconds = Math.ceil(expiresAtMs / 1000);
  return Math.max(seconds, Math.ceil(nowMs / 1000) + KV_MIN_TTL_SECONDS);
}

/** Why a stored record no longer authenticates, or null when it does. KV expiry is lazy, so this re-checks. */
export function deadReason(record: TokenRecord, nowMs: number): string | null {
  if (record.expiresAt !== null && record.expiresAt <= nowMs) return "token expired";
  if (record.accountStatus !== "active") return "account disabled";
  if (record.accountExpiresAt !== null && record.accountExpiresAt <= nowMs) return "account expired";
  return null;
}
