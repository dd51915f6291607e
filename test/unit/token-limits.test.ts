import { describe, expect, it } from "vitest";
import { checkRestrictions, refilled } from "../../src/domain/credentials/token-limits.ts";
import type { AccountClaims } from "../../src/domain/credentials/kv-records.ts";

/** The pure rules of per-token restrictions (src/domain/credentials/token-limits.ts): refills and the containment checks. */

const claims = (over: Partial<AccountClaims> = {}): AccountClaims => ({
  accountId: "sa_x",
  orgId: "org_x",
  status: "active",
  expiresAt: null,
  platformPermissions: [],
  groups: [],
  roles: [],
  scopes: ["orgs.read", "service-accounts.read"],
  allowedCidrs: [],
  tokenEndpointAuthMethod: null,
  ...over,
});

describe("refilled", () => {
  const counter = { remaining: 0, refillAmount: 5, refillIntervalMs: 1_000, lastRefillAt: 10_000 };
  it("waits for a whole interval", () => {
    expect(refilled(counter, 10_999)).toEqual(counter);
    expect(refilled(counter, 11_000)).toEqual({ ...counter, remaining: 5, lastRefillAt: 11_000 });
  });
  it("sets back to the amount, never more, however many intervals passed; keeps the period's phase", () => {
    expect(refilled({ ...counter, remaining: 3 }, 13_500)).toEqual({ ...counter, remaining: 5, lastRefillAt: 13_000 });
  });
  it("does nothing without a refill", () => {
    const plain = { remaining: 2, refillAmount: null, refillIntervalMs: null, lastRefillAt: null };
    expect(refilled(plain, 1e15)).toEqual(plain);
  });
});

describe("checkRestrictions", () => {
  it("scopes: a subset of the account's, sorted and without duplicates", () => {
    expect(checkRestrictions({ scopes: ["service-accounts.read", "orgs.read", "orgs.read"] }, claims(), 0)).toMatchObject({ ok: true, columns: { scopes: ["orgs.read", "service-accounts.read"] } });
    expect(checkRestrictions({ scopes: ["roles.edit"] }, claims(), 0)).toMatchObject({ ok: false, code: "token_scope_not_allowed" });
  });
  it("networks: each within one of the account's (same family, as long a prefix or longer)", () => {
    const bounded = claims({ allowedCidrs: ["10.0.0.0/8", "2001:db8::/32"] });
    // An IPv4-mapped block is the IPv4 block it maps: ::ffff:10.1.0.0/112 is 10.1.0.0/16, ::ffff:10.0.0.0/100 is 0.0.0.0/4.
    for (const ok of ["10.0.0.0/8", "10.255.0.0/16", "10.1.2.3", "2001:db8:1::/48", "::ffff:10.1.0.0/112"]) expect(checkRestrictions({ allowedCidrs: [ok] }, bounded, 0).ok, ok).toBe(true);
    for (const bad of ["10.0.0.0/7", "11.0.0.0/8", "0.0.0.0/0", "2001:db9::/32", "::ffff:10.0.0.0/100", "::/0"]) {
      expect(checkRestrictions({ allowedCidrs: [bad] }, bounded, 0), bad).toMatchObject({ ok: false, code: "token_cidr_not_allowed" });
    }
    expect(checkRestrictions({ allowedCidrs: ["0.0.0.0/0"] }, claims(), 0).ok).toBe(true);
  });
  it("uses and refill: maxUses is the larger of the two; a refill needs uses and one interval", () => {
    expect(checkRestrictions({ remainingUses: 3, refill: { amount: 10, interval: "hour" } }, claims(), 42)).toMatchObject({
      ok: true,
      columns: { remainingUses: 3, maxUses: 10, refillAmount: 10, refillIntervalMs: 3_600_000, lastRefillAt: 42 },
    });
    expect(checkRestrictions({ refill: { amount: 1, interval: "day" } }, claims(), 0).ok).toBe(false);
    expect(checkRestrictions({ remainingUses: 1, refill: { amount: 1 } }, claims(), 0).ok).toBe(false);
    expect(checkRestrictions({ remainingUses: 1, refill: { amount: 1, interval: "day", intervalSeconds: 5 } }, claims(), 0).ok).toBe(false);
  });
});
