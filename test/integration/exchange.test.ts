import { env } from "cloudflare:workers";
import * as jose from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { generateAccessToken } from "../../src/domain/credentials/access-token.ts";
import { createCtx } from "../../src/domain/shared/context.ts";
import { exchangeAccessToken } from "../../src/domain/issuance/exchange.ts";
import { DomainError } from "../../src/domain/shared/errors.ts";
import { call, expectStatus, platformRoot } from "../helpers.ts";
import {
  DEFAULT_TTL,
  exchange,
  expectProblemCode,
  expectUnauthorized,
  expireTokenInKv,
  ISSUER,
  jwtFor,
  MAX_TTL,
  newClient,
  servedJwks,
  verifyAgainstJwks,
} from "./oauth-helpers.ts";

/** POST /api/auth/access-tokens/jwt: an access token for a short-lived RFC 9068 JWT. */

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

const VIEWER_SCOPES = ["audit.read", "orgs.read", "service-accounts.read"];
const lifetime = (jwt: string) => {
  const { exp, iat } = jose.decodeJwt(jwt);
  return exp! - iat!;
};

describe("token exchange: lifetime", () => {
  it("defaults to DEFAULT_JWT_TTL_SECONDS (300 s) and is not cached", async () => {
    const { token } = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const res = await exchange(token);
    expectStatus(res, 200);
    expect(Object.keys(res.json), res.text).toEqual(["jwt"]);
    expect(lifetime(res.json.jwt), res.text).toBe(DEFAULT_TTL);
    const { iat } = jose.decodeJwt(res.json.jwt);
    expect(Math.abs(iat! - Date.now() / 1000), `iat ${iat}`).toBeLessThan(10);
    expect(res.headers.get("cache-control") ?? "", res.text).toMatch(/no-store/);
  });

  it("honours duration_seconds (60, and the maximum 3600 itself)", async () => {
    const { token } = await newClient(root.token);
    expect(lifetime(await jwtFor(token, { duration_seconds: 60 }))).toBe(60);
    expect(lifetime(await jwtFor(token, { duration_seconds: MAX_TTL }))).toBe(MAX_TTL);
  });

  it("rejects a duration over MAX_JWT_TTL_SECONDS (3601) with 400", async () => {
    const { token } = await newClient(root.token);
    expectProblemCode(await exchange(token, { duration_seconds: MAX_TTL + 1 }), 400, "invalid_duration");
  });

  it.each([0, -60, 1.5, "60", null])("rejects duration_seconds %j with a 400 validation problem", async (duration) => {
    const { token } = await newClient(root.token);
    const res = await call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: token, duration_seconds: duration } });
    expectProblemCode(res, 400, "validation_failed");
  });

  it("rejects (never clips) a duration beyond the access token's remaining lifetime, the default included", async () => {
    const { token } = await newClient(root.token, { issueToken: { expiresInSeconds: 120 } });
    const long = await exchange(token, { duration_seconds: 600 });
    expectProblemCode(long, 400, "invalid_duration");
    expect(long.text).not.toContain('"jwt"');
    // The default (300 s) is also more than the 120 s the token has left.
    expectProblemCode(await exchange(token), 400, "invalid_duration");
    // Within what is left it works, with exactly the asked lifetime.
    expect(lifetime(await jwtFor(token, { duration_seconds: 100 }))).toBe(100);
  });

  it("bounds the duration by the account's own expiry too", async () => {
    const expiresAt = new Date(Date.now() + 200_000).toISOString();
    const { token } = await newClient(root.token, { expiresAt });
    expectProblemCode(await exchange(token), 400, "invalid_duration");
    expect(lifetime(await jwtFor(token, { duration_seconds: 120 }))).toBe(120);
  });
});

describe("token exchange: scope", () => {
  it("without scope, the JWT carries everything the account may request", async () => {
    const { token } = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const { scope } = jose.decodeJwt(await jwtFor(token));
    expect(String(scope).split(" ").sort()).toEqual(VIEWER_SCOPES);
  });

  it("grants exactly the requested scope when it is within the account's operations", async () => {
    const { token } = await newClient(root.token, { roles: [{ role: "viewer" }] });
    expect(jose.decodeJwt(await jwtFor(token, { scope: "orgs.read service-accounts.read audit.read" })).scope).toBe(
      "orgs.read service-accounts.read audit.read",
    );
    expect(jose.decodeJwt(await jwtFor(token, { scope: "service-accounts.read" })).scope).toBe("service-accounts.read");
  });

  it.each(["nonsense", "service-accounts.edit", "orgs.read platform.root", "orgs.read roles.edit"])(
    "a scope outside the account's operations (%s) is 400 invalid_scope",
    async (scope) => {
      const { token } = await newClient(root.token, { roles: [{ role: "viewer" }] });
      const res = await exchange(token, { scope });
      expectProblemCode(res, 400, "invalid_scope");
      expect(res.text).not.toContain('"jwt"');
    },
  );

  it("scopes from allowedScopes (set at creation) are requestable", async () => {
    // Downstream scopes are declared by the org first (issue 23).
    const org = await call("POST", "/api/v1/orgs", { token: root.token, body: { slug: `scoped-${crypto.randomUUID().slice(0, 8)}`, name: "Scoped", policy: { scopes: ["service:computational-governance"] } } });
    expectStatus(org, 201);
    const { token } = await newClient(root.token, { roles: [{ role: "viewer" }], allowedScopes: ["service:computational-governance"] }, org.json.id);
    const jwt = await jwtFor(token, { scope: "service:computational-governance" });
    expect(jose.decodeJwt(jwt).scope).toBe("service:computational-governance");
    const both = await jwtFor(token, { scope: "service:computational-governance orgs.read" });
    expect(jose.decodeJwt(both).scope).toBe("service:computational-governance orgs.read");
    // ...but not for an account that was not given them.
    const other = await newClient(root.token, { roles: [{ role: "viewer" }] });
    expectProblemCode(await exchange(other.token, { scope: "service:computational-governance" }), 400, "invalid_scope");
  });
});

describe("token exchange: the JWT (RFC 9068)", () => {
  it("has typ at+jwt, alg ES256 and a kid published in the JWKS", async () => {
    const { token } = await newClient(root.token);
    const jwt = await jwtFor(token);
    const header = jose.decodeProtectedHeader(jwt);
    expect(header.typ).toBe("at+jwt");
    expect(header.alg).toBe("ES256");
    expect(header.kid, JSON.stringify(header)).toBeTypeOf("string");
    const { keys } = await servedJwks();
    const published = keys.find((k) => k.kid === header.kid);
    expect(published, JSON.stringify(keys)).toBeDefined();
    expect(published).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
  });

  it("carries iss, sub, aud, exp, iat, jti, client_id, scope, org_id, groups and roles", async () => {
    const { token, account, org } = await newClient(root.token, { roles: [{ role: "viewer" }], groups: ["ci", "deploy"] });
    const claims = jose.decodeJwt(await jwtFor(token, { scope: "orgs.read" }));
    expect(claims, JSON.stringify(claims)).toMatchObject({
      iss: ISSUER,
      sub: account.id,
      aud: ISSUER,
      client_id: account.id,
      scope: "orgs.read",
      org_id: org.id,
      groups: ["ci", "deploy"],
      roles: ["viewer"],
    });
    expect(claims.jti, JSON.stringify(claims)).toMatch(/^[0-9A-Za-z_-]{16,}$/);
    expect(claims.exp! - claims.iat!).toBe(DEFAULT_TTL);
  });

  it("every JWT has its own jti", async () => {
    const { token } = await newClient(root.token);
    const jtis = new Set<unknown>();
    for (let i = 0; i < 5; i++) jtis.add(jose.decodeJwt(await jwtFor(token)).jti);
    expect(jtis.size).toBe(5);
  });

  it("verifies with jose against the served JWKS", async () => {
    const { token, account } = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const { payload, protectedHeader } = await verifyAgainstJwks(await jwtFor(token));
    expect(payload.sub).toBe(account.id);
    expect(protectedHeader.typ).toBe("at+jwt");
  });

  it("a tampered JWT does not verify against the JWKS", async () => {
    const { token, account } = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const [h, , s] = (await jwtFor(token)).split(".");
    const claims = { ...jose.decodeJwt(await jwtFor(token)), scope: "platform.root", sub: account.id };
    const forged = `${h}.${jose.base64url.encode(JSON.stringify(claims))}.${s}`;
    await expect(verifyAgainstJwks(forged)).rejects.toThrow();
  });
});

describe("token exchange: refused credentials (401)", () => {
  it.each([
    ["garbage", "garbage"],
    ["a sat_ token with a wrong checksum", "sat_0123456789abcdefghijklmnopqrstuvwxyzAB"],
    ["a well-formed but unknown token", generateAccessToken()],
  ])("%s", async (_, accessToken) => {
    expectUnauthorized(await exchange(accessToken));
  });

  it("a missing access_token is a 400 validation problem", async () => {
    expectProblemCode(await call("POST", "/api/auth/access-tokens/jwt", { body: { duration_seconds: 60 } }), 400, "validation_failed");
  });

  it("a revoked token is refused (revoke then exchange)", async () => {
    const { token, tokenId, org, account } = await newClient(root.token);
    await jwtFor(token);
    const revoked = await call("DELETE", `/api/v1/orgs/${org.id}/service-accounts/${account.id}/tokens/${tokenId}`, { token: root.token });
    expectStatus(revoked, 204);
    expectUnauthorized(await exchange(token));
  });

  it("an expired token is refused even while KV still holds its record", async () => {
    const { token } = await newClient(root.token);
    await jwtFor(token);
    await expireTokenInKv(token);
    expectUnauthorized(await exchange(token));
  });

  it("an expired token is refused when the clock passes its expiry (service level)", async () => {
    const { token } = await newClient(root.token, { issueToken: { expiresInSeconds: 60 } });
    const ctx = createCtx(env, { actorId: "test", requestId: null, ip: null, userAgent: null });
    const later = { ...ctx, now: () => Date.now() + 61_000 };
    const err = await Promise.resolve()
      .then(() => exchangeAccessToken(later, { accessToken: token, durationSeconds: 1 }))
      .catch((e: unknown) => e);
    expect(err, String(err)).toBeInstanceOf(DomainError);
    expect((err as DomainError).code).toBe("unauthenticated");
    // The same call without the clock shift succeeds: the refusal is about the expiry.
    const ok = await exchangeAccessToken(ctx, { accessToken: token, durationSeconds: 1 });
    expect(ok.jws.split(".")).toHaveLength(3);
    // Cached in this isolate 6 s before the expiry (answered from the cache): the expiry still holds.
    await exchangeAccessToken({ ...ctx, now: () => Date.now() + 55_000 }, { accessToken: token, durationSeconds: 1 });
    const cachedErr = await Promise.resolve()
      .then(() => exchangeAccessToken(later, { accessToken: token, durationSeconds: 1 }))
      .catch((e: unknown) => e);
    expect((cachedErr as DomainError).code).toBe("unauthenticated");
  });

  it("a disabled account's token is refused, and works again once re-enabled", async () => {
    const { token, org, account } = await newClient(root.token);
    await jwtFor(token);
    const path = `/api/v1/orgs/${org.id}/service-accounts/${account.id}`;
    expectStatus(await call("PATCH", path, { token: root.token, body: { status: "disabled" } }), 200);
    expectUnauthorized(await exchange(token));
    expectStatus(await call("PATCH", path, { token: root.token, body: { status: "active" } }), 200);
    await jwtFor(token);
  });

  it("a deleted account's token is refused", async () => {
    const { token, org, account } = await newClient(root.token);
    await jwtFor(token);
    expectStatus(await call("DELETE", `/api/v1/orgs/${org.id}/service-accounts/${account.id}`, { token: root.token }), 204);
    expectUnauthorized(await exchange(token));
  });

  it("a JWT is not accepted in place of an access token", async () => {
    const { token } = await newClient(root.token);
    const res = await exchange(await jwtFor(token));
    expect([400, 401], `${res.status}: ${res.text}`).toContain(res.status);
    expect(res.text).not.toContain('"jwt"');
  });
});

describe("token exchange: errors say which limit and how to stay within it", () => {
  it("over MAX_JWT_TTL_SECONDS: names the variable, its value and what to ask for", async () => {
    const { token } = await newClient(root.token);
    const body = expectProblemCode(await exchange(token, { duration_seconds: 7200 }), 400, "invalid_duration");
    expect(body.detail).toBe(`duration_seconds 7200 is over MAX_JWT_TTL_SECONDS (${MAX_TTL}): ask for ${MAX_TTL} or less`);
  });

  it("over what the access token has left: says how many seconds it has, for the asked duration and for the default", async () => {
    const { token } = await newClient(root.token, { issueToken: { expiresInSeconds: 120 } });
    const asked = expectProblemCode(await exchange(token, { duration_seconds: 600 }), 400, "invalid_duration");
    const left = Number(/has left \((\d+) s\)/.exec(asked.detail)?.[1]);
    expect(left, asked.detail).toBeGreaterThan(100);
    expect(left, asked.detail).toBeLessThanOrEqual(120);
    expect(asked.detail).toMatch(new RegExp(`^duration_seconds 600 is more than the access token has left \\(${left} s\\): ask for at most ${left}`));
    const byDefault = expectProblemCode(await exchange(token), 400, "invalid_duration");
    expect(byDefault.detail).toMatch(/^The default lifetime DEFAULT_JWT_TTL_SECONDS \(300 s\) is more than the access token has left \(\d+ s\): ask for at most \d+ with duration_seconds$/);
  });
});

describe("token exchange: an empty scope", () => {
  it.each(["", "  "])("scope %j is 400 invalid_scope, saying to omit scope for every allowed scope", async (scope) => {
    const { token } = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const res = await exchange(token, { scope });
    const body = expectProblemCode(res, 400, "invalid_scope");
    expect(body.detail, res.text).toMatch(/omit scope/);
    expect(res.text).not.toContain('"jwt"');
  });
});
