import { crc32, randomBase62, sha256Hex, toBase62 } from "../../lib/crypto.ts";

/**
 * Access token format (CONTRACT): `sat_` + 32 base62 CSPRNG characters (about 190 bits) + 6 base62
 * characters of the CRC-32 of everything before them. The checksum lets us reject typos and
 * garbage without a storage lookup; it is not a security control.
 */
export const TOKEN_PREFIX = "sat_";
const RANDOM_LENGTH = 32;
const CHECKSUM_LENGTH = 6;
const TOKEN_SHAPE = /^sat_[0-9A-Za-z]{36,}$/;

export function checksum(body: string): string {
  return toBase62(crc32(body), CHECKSUM_LENGTH);
}

/** A fresh secret with its checksum. */
export function generateAccessToken(): string {
  const body = TOKEN_PREFIX + randomBase62(RANDOM_LENGTH);
  return body + checksum(body);
}

/** True when the string has the token shape and a valid checksum (no I/O). */
export function isWellFormedAccessToken(token: string): boolean {
  if (token.length > 128 || !TOKEN_SHAPE.test(token)) return false;
  const body = token.slice(0, -CHECKSUM_LENGTH);
  return checksum(body) === token.slice(-CHECKSUM_LENGTH);
}

/** What the API shows after creation, e.g. `sat_AbC1…wxYz`. */
export function tokenHint(token: string): string {
  return `${token.slice(0, TOKEN_PREFIX.length + 4)}…${token.slice(-4)}`;
}

export const hashToken = sha256Hex;
