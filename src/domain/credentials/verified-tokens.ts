import type { JWTPayload } from "jose";
import { isolateState } from "../shared/isolate-state.ts";

/**
 * External tokens whose signature and times this isolate has verified, by the SHA-256 of their
 * bytes, so that a workload presenting the same token again (a pod re-reading its projected
 * token) costs a hash and a lookup instead of a signature verification. Only the verification is
 * remembered: the policies, the replay cache and the account are checked on every presentation.
 * Bounds: an entry lives VERIFIED_TTL_MS at most (never past the token's exp), which is under the
 * issuer keys' freshness floor, so a key the issuer withdraws stops counting no later than it
 * would through the key cache; at most VERIFIED_MAX entries, the oldest dropped first.
 */
export const VERIFIED_TTL_MS = 60_000;
export const VERIFIED_MAX = 10_000;

type VerifiedClaims = JWTPayload & { iss: string; exp: number };
const verified = isolateState("federated-verified-tokens", () => ({ byHash: new Map<string, { claims: VerifiedClaims; until: number }>() }));

/** The claims of a token verified here before, if its entry and the token itself are still alive. */
export function recallVerified(hash: string, nowMs: number, skewSeconds: number): VerifiedClaims | undefined {
  const entry = verified.byHash.get(hash);
  if (!entry) return undefined;
  if (entry.until <= nowMs || entry.claims.exp * 1000 + skewSeconds * 1000 <= nowMs) {
    verified.byHash.delete(hash);
    return undefined;
  }
  return entry.claims;
}

/** Remembers a token whose signature and times just verified. */
export function rememberVerified(hash: string, claims: VerifiedClaims, nowMs: number): void {
  const byHash = verified.byHash;
  if (byHash.size >= VERIFIED_MAX) byHash.delete(byHash.keys().next().value!);
  byHash.set(hash, { claims, until: Math.min(nowMs + VERIFIED_TTL_MS, claims.exp * 1000) });
}
