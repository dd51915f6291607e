import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { generateAccessToken, hashToken } from "../../src/domain/credentials/access-token.ts";
import { forgetCredentials, TOKEN_CACHE_TTL_MS, verifyAccessToken } from "../../src/domain/credentials/record-cache.ts";
import { tokenKey, type TokenRecord } from "../../src/domain/credentials/kv-records.ts";
import { TtlCache } from "../../src/lib/ttl-cache.ts";

const record = (tokenId: string, accountId: string): TokenRecord => ({
  tokenId,
  expiresAt: null,
  tokenExpiresAt: null,
  account: { accountId, orgId: "org_x", status: "active", expiresAt: null, platformPermissions: [], groups: [], roles: [], scopes: [], allowedCidrs: [], tokenEndpointAuthMethod: null },
});

/** The revocation bound of the per-isolate token cache. */
describe("token record cache", () => {
  it("a revocation made elsewhere (KV entry gone) is honoured here within the TTL, never later", async () => {
    const token = generateAccessToken();
    const key = tokenKey(await hashToken(token));
    await env.TOKENS.put(key, JSON.stringify(record("tok_cache1", "sa_cache1")));
    const t0 = Date.now();
    expect(await verifyAccessToken(env, token, t0)).not.toBeNull();
    await env.TOKENS.delete(key); // revoked through another isolate
    expect(await verifyAccessToken(env, token, t0 + TOKEN_CACHE_TTL_MS - 1), "still cached just inside the bound").not.toBeNull();
    expect(await verifyAccessToken(env, token, t0 + TOKEN_CACHE_TTL_MS), "refused once the bound has passed").toBeNull();
  });

  it("a change made through this isolate is honoured at once", async () => {
    const token = generateAccessToken();
    const key = tokenKey(await hashToken(token));
    await env.TOKENS.put(key, JSON.stringify(record("tok_cache2", "sa_cache2")));
    const t0 = Date.now();
    expect(await verifyAccessToken(env, token, t0)).not.toBeNull();
    await env.TOKENS.delete(key);
    forgetCredentials({ accountId: "sa_cache2" }); // what every call to the account's object does
    expect(await verifyAccessToken(env, token, t0 + 1)).toBeNull();
  });

  it("unknown tokens are not cached, so a token issued elsewhere works here at once", async () => {
    const token = generateAccessToken();
    const t0 = Date.now();
    expect(await verifyAccessToken(env, token, t0)).toBeNull();
    await env.TOKENS.put(tokenKey(await hashToken(token)), JSON.stringify(record("tok_cache3", "sa_cache3")));
    expect(await verifyAccessToken(env, token, t0 + 1)).not.toBeNull();
  });

  it("TtlCache evicts by age, by size (least recently used first) and by predicate", () => {
    const cache = new TtlCache<number>(100, 2);
    cache.set("a", 1, 0);
    cache.set("b", 2, 0);
    expect(cache.get("a", 50)).toBe(1); // a is now the most recently used
    cache.set("c", 3, 50);
    expect(cache.get("b", 50)).toBeUndefined();
    expect(cache.get("a", 99)).toBe(1);
    expect(cache.get("a", 100)).toBeUndefined();
    cache.evictWhere((v) => v === 3);
    expect(cache.get("c", 60)).toBeUndefined();
  });
});
