import { TtlCache } from "../../lib/ttl-cache.ts";
import { isolateState } from "../shared/isolate-state.ts";
import type { TrustPolicy } from "./federated-plans.ts";

/**
 * The enabled trust policies of each issuer, as the federated grants last read them, kept in the
 * isolate for POLICY_CACHE_TTL_MS: a policy created, changed or deleted through another isolate
 * applies here within that bound, and through this one at once (the write path forgets them).
 * The grants read D1 at most once per issuer and interval, not once per token.
 */
export const POLICY_CACHE_TTL_MS = 10_000;

const policies = isolateState("trust-policies", () => ({ byIssuer: new TtlCache<Promise<TrustPolicy[]>>(POLICY_CACHE_TTL_MS, 256) }));

/** Forgets the cached policies of every issuer (after a change to any policy). */
export function forgetTrustPolicies(): void {
  policies.byIssuer.clear();
}

/** The issuer's policies from the cache, else from `load` (a failed load is not kept). */
export function cachedTrustPolicies(issuer: string, now: number, load: () => Promise<TrustPolicy[]>): Promise<TrustPolicy[]> {
  let found = policies.byIssuer.get(issuer, now);
  if (!found) {
    found = load();
    policies.byIssuer.set(issuer, found, now);
    found.catch(() => policies.byIssuer.delete(issuer));
  }
  return found;
}
