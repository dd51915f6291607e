import { env } from "cloudflare:workers";
import { compactVerify, decodeProtectedHeader, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { createCtx } from "../../src/domain/shared/context.ts";
import { ACCESS_TOKEN_TYP, accessTokenPayload, getKeyset, mintJwt, NO_SOURCE } from "../../src/domain/signing/jwt.ts";
import type { AccountClaims } from "../../src/domain/credentials/kv-records.ts";
import { activeKey, importVerifyKey } from "../../src/domain/signing/keyset.ts";

/** The wire form of the JWTs Keyward mints: jose's SignJWT under the active key, with our header and claim order. */

const ctx = createCtx(env, { actorId: "test", requestId: null, ip: null, userAgent: null });
const account: AccountClaims = {
  accountId: "sa_jwsTest1",
  orgId: "org_jwsTest1",
  groups: ["g1"],
  roles: ["viewer"],
  scopes: ["service-accounts.read"],
  status: "active",
  expiresAt: null,
  platformPermissions: [],
  allowedCidrs: null,
  tokenEndpointAuthMethod: null,
} as unknown as AccountClaims;

const claims = {
  iss: "https://keyward.example",
  sub: "sa_1",
  aud: "https://keyward.example",
  iat: 1_700_000_000,
  exp: 1_700_000_300,
  jti: "j1",
  client_id: "sa_1",
  scope: ["a.read", "b.write"],
  org_id: "org_1",
  groups: ["g"],
  roles: ["viewer"],
  source_token_id: "tok_1",
  source_jtis: ["j0"],
};

const payloadOf = (c: Parameters<typeof accessTokenPayload>[0]) => JSON.parse(new TextDecoder().decode(accessTokenPayload(c)));

describe("accessTokenPayload", () => {
  it("writes the claims in their order, scope as one string (RFC 9068 2.2.3)", () => {
    const payload = payloadOf(claims);
    expect(Object.keys(payload)).toEqual(["iss", "sub", "aud", "iat", "exp", "jti", "client_id", "scope", "org_id", "groups", "roles", "source_token_id", "source_jtis"]);
    expect(payload.scope).toBe("a.read b.write");
  });

  it("leaves out org_id when there is none, and the source claims when there is no source", () => {
    const payload = payloadOf({ ...claims, org_id: null, source_token_id: null, source_jtis: [] });
    expect(Object.keys(payload)).toEqual(["iss", "sub", "aud", "iat", "exp", "jti", "client_id", "scope", "groups", "roles"]);
  });
});

describe("accessTokenPayload: the status claim", () => {
  it("writes status: {status_list: {idx, uri}} last, as JSON.stringify would, escaping the uri", () => {
    const status = { idx: 77, uri: 'https://keyward.example/statuslists/3"\\' };
    const text = new TextDecoder().decode(accessTokenPayload({ ...claims, status }));
    expect(text.endsWith(`,"status":${JSON.stringify({ status_list: status })}}`), text).toBe(true);
    expect(JSON.parse(text).status).toEqual({ status_list: status });
  });

  it("mintJwt puts the source's index in as (list, bit), and none when the source has none", async () => {
    const g = 2 * 131_072 + 5;
    const minted = await mintJwt(ctx, { account, scope: [], audience: ctx.config.ISSUER, ttlSeconds: 60, source: { ...NO_SOURCE, statusIdx: g } });
    const payload = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(minted.jws.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0))));
    expect(payload.status).toEqual({ status_list: { idx: 5, uri: `${ctx.config.ISSUER}/statuslists/2` } });
    const none = await mintJwt(ctx, { account, scope: [], audience: ctx.config.ISSUER, ttlSeconds: 60, source: NO_SOURCE });
    expect(Object.keys(JSON.parse(atob(none.jws.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))))).not.toContain("status");
  });
});

describe("mintJwt", () => {
  it("signs with the active key: the header is exactly {alg, kid, typ: at+jwt}, and jose verifies it", async () => {
    const minted = await mintJwt(ctx, { account, scope: ["service-accounts.read"], audience: ctx.config.ISSUER, ttlSeconds: 60, source: NO_SOURCE });
    const key = activeKey(await getKeyset(ctx), ctx.now())!;
    expect(decodeProtectedHeader(minted.jws)).toEqual({ alg: key.alg, kid: key.kid, typ: ACCESS_TOKEN_TYP });
    const publicKey = await importVerifyKey(key);
    const { payload } = await jwtVerify(minted.jws, publicKey, { algorithms: [key.alg], typ: ACCESS_TOKEN_TYP, issuer: ctx.config.ISSUER });
    expect(payload).toMatchObject({ sub: account.accountId, client_id: account.accountId, org_id: account.orgId, scope: "service-accounts.read", jti: minted.jti, exp: minted.exp, iat: minted.iat });
    expect(Object.keys(payload)).toEqual(["iss", "sub", "aud", "iat", "exp", "jti", "client_id", "scope", "org_id", "groups", "roles"]);
  });

  it("a signature does not verify with a changed payload", async () => {
    const minted = await mintJwt(ctx, { account, scope: [], audience: ctx.config.ISSUER, ttlSeconds: 60, source: NO_SOURCE });
    const key = activeKey(await getKeyset(ctx), ctx.now())!;
    const [header, , signature] = minted.jws.split(".");
    const forged = `${header}.${btoa(JSON.stringify({ sub: "sa_2", exp: 4_000_000_000 })).replace(/=+$/, "")}.${signature}`;
    await expect(compactVerify(forged, await importVerifyKey(key))).rejects.toThrow();
  });
});
