import { env } from "cloudflare:workers";
import * as jose from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { generateAccessToken } from "../../src/domain/credentials/access-token.ts";
import { call, expectStatus, platformRoot, unique } from "../helpers.ts";
import {
  addPublicKey,
  API_AUDIENCE,
  clientAssertion,
  type Client,
  expectOAuthError,
  expectUnauthorized,
  expireTokenInKv,
  ISSUER,
  JWT_BEARER,
  jwtFor,
  keyPair,
  newClient,
  nowS,
  postForm,
  type Res,
  sleep,
  signWithServiceKey,
  standardClaims,
} from "./oauth-helpers.ts";

/** RFC 7662 introspection and RFC 7009 revocation, both client-authenticated. */

let root: { id: string; token: string };
/** The resource server that introspects: a client of the org whose tokens it is asked about. */
let rs: Client;
beforeAll(async () => {
  root = await platformRoot();
  rs = await newClient(root.token);
});

/** A fresh account (with its first token) in the resource server's org: its tokens are rs's to introspect. */
const member = (body: Record<string, unknown> = {}) => newClient(root.token, body, rs.org.id);

const introspect = (token: string, by: [string, string] = [rs.account.id, rs.token]) => postForm("/oauth/introspect", { token }, { basic: by });
const revoke = (token: string, by: [string, string]) => postForm("/oauth/revoke", { token }, { basic: by });
/** Whether a credential authenticates at all (listing orgs needs no permission). */
const whoami = (_c: Client, token: string) => call("GET", "/api/v1/orgs", { token });

function expectInactive(res: Res) {
  expect(res.status, res.text).toBe(200);
  expect(res.headers.get("cache-control") ?? "", res.text).toMatch(/no-store/);
  expect(res.json, res.text).toStrictEqual({ active: false });
}

describe("introspection: client authentication", () => {
  it("unauthenticated is 401 invalid_client", async () => {
    const c = await member();
    const res = await postForm("/oauth/introspect", { token: c.token });
    expectOAuthError(res, 401, "invalid_client");
    expect(res.text).not.toContain(c.account.id);
  });

  it("a wrong secret is 401 invalid_client with a Basic challenge", async () => {
    const c = await member();
    const res = await introspect(c.token, [rs.account.id, generateAccessToken()]);
    expectOAuthError(res, 401, "invalid_client");
    expect(res.headers.get("www-authenticate") ?? "").toMatch(/^Basic\b/);
  });

  it("a JSON body is 400 invalid_request", async () => {
    const res = await call("POST", "/oauth/introspect", { body: { token: rs.token }, headers: { authorization: `Basic ${btoa(`${rs.account.id}:${rs.token}`)}` } });
    expectOAuthError(res, 400, "invalid_request");
  });

  it("client_secret_post and private_key_jwt authenticate too", async () => {
    const c = await member();
    const post = await postForm("/oauth/introspect", { token: c.token, client_id: rs.account.id, client_secret: rs.token });
    expect(post.json?.active, post.text).toBe(true);
    const keyed = await member({ issueToken: false });
    const { publicKey, privateKey } = await keyPair("ES256");
    const key = await addPublicKey(root.token, keyed.org.id, keyed.account.id, { publicKey: await jose.exportSPKI(publicKey) });
    expectStatus(key, 201);
    const assertion = await clientAssertion(privateKey, keyed.account.id, { kid: key.json.kid });
    const byKey = await postForm("/oauth/introspect", { token: c.token, client_assertion_type: JWT_BEARER, client_assertion: assertion });
    expect(byKey.json?.active, byKey.text).toBe(true);
    // The assertion is single-use here too.
    expectOAuthError(await postForm("/oauth/introspect", { token: c.token, client_assertion_type: JWT_BEARER, client_assertion: assertion }), 401, "invalid_client");
  });
});

describe("introspection: active tokens", () => {
  it("an access token is active with sub, client_id, scope, iss, org_id and no-store", async () => {
    const c = await member({ roles: [{ role: "viewer" }], issueToken: { expiresInSeconds: 3600 } });
    const res = await introspect(c.token);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("cache-control") ?? "", res.text).toMatch(/no-store/);
    expect(res.json, res.text).toMatchObject({
      active: true,
      sub: c.account.id,
      client_id: c.account.id,
      scope: "audit.read orgs.read service-accounts.read",
      iss: ISSUER,
      org_id: c.org.id,
    });
    expect(Math.abs(res.json.exp - (nowS() + 3600)), res.text).toBeLessThan(30);
    expect(res.text).not.toContain(c.token);
  });

  it("a JWT is active with its claims", async () => {
    const c = await member({ roles: [{ role: "viewer" }] });
    const jwt = await jwtFor(c.token, { scope: "orgs.read" });
    const claims = jose.decodeJwt(jwt);
    const res = await introspect(jwt);
    expect(res.status, res.text).toBe(200);
    expect(res.json, res.text).toMatchObject({
      active: true,
      sub: c.account.id,
      client_id: c.account.id,
      scope: "orgs.read",
      iss: ISSUER,
      aud: ISSUER,
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
      org_id: c.org.id,
    });
  });

  it("a JWT for another audience is active too (introspection serves resource servers)", async () => {
    const c = await member();
    const minted = await postForm("/oauth/token", { grant_type: "client_credentials", resource: API_AUDIENCE }, { basic: [c.account.id, c.token] });
    expectStatus(minted, 200);
    const res = await introspect(minted.json.access_token);
    expect(res.json, res.text).toMatchObject({ active: true, aud: API_AUDIENCE, sub: c.account.id });
  });
});

describe("introspection: anything else is exactly {active: false}", () => {
  it.each(["garbage", "sat_0123456789abcdefghijklmnopqrstuvwxyzAB", "a.b.c", ""])("garbage %j", async (token) => {
    expectInactive(await introspect(token));
  });

  it("a well-formed unknown access token", async () => {
    expectInactive(await introspect(generateAccessToken()));
  });

  it("a revoked access token", async () => {
    const c = await member();
    expectStatus(await call("DELETE", `/api/v1/orgs/${c.org.id}/service-accounts/${c.account.id}/tokens/${c.tokenId}`, { token: root.token }), 204);
    expectInactive(await introspect(c.token));
  });

  it("an expired access token (record still in KV)", async () => {
    const c = await member();
    await expireTokenInKv(c.token);
    expectInactive(await introspect(c.token));
  });

  it("an expired JWT", async () => {
    const c = await member();
    const jwt = await signWithServiceKey(c.token, { typ: "at+jwt" }, standardClaims(c.account.id, { iat: nowS() - 600, exp: nowS() - 120 }));
    expectInactive(await introspect(jwt));
  });

  it("a forged JWT (valid header and claims, wrong signature)", async () => {
    const c = await member();
    const [h, p] = (await jwtFor(c.token)).split(".");
    expectInactive(await introspect(`${h}.${p}.${jose.base64url.encode(new Uint8Array(64))}`));
  });

  it("a revoked JWT", async () => {
    const c = await member();
    const jwt = await jwtFor(c.token);
    expectStatus(await revoke(jwt, [c.account.id, c.token]), 200);
    expectInactive(await introspect(jwt));
  });

  it("tokens of a disabled account", async () => {
    const c = await member();
    const jwt = await jwtFor(c.token);
    expectStatus(await call("PATCH", `/api/v1/orgs/${c.org.id}/service-accounts/${c.account.id}`, { token: root.token, body: { status: "disabled" } }), 200);
    expectInactive(await introspect(c.token));
    expectInactive(await introspect(jwt));
  });
});

describe("revocation (RFC 7009)", () => {
  it("without client credentials the token authenticates itself (self-revocation, test/integration/self-revocation.test.ts); bad client credentials stay 401 invalid_client, and the token survives", async () => {
    const c = await member();
    expectOAuthError(await postForm("/oauth/revoke", { token: c.token, client_id: c.account.id, client_secret: "wrong" }), 401, "invalid_client");
    expectOAuthError(await postForm("/oauth/revoke", { token: c.token }, { basic: [c.account.id, "wrong"] }), 401, "invalid_client");
    expectStatus(await whoami(c, c.token), 200);
    expectStatus(await postForm("/oauth/revoke", { token: c.token }), 200);
    expectUnauthorized(await whoami(c, c.token));
  });

  it("revoking an access token: 200, then 401 on the API and inactive", async () => {
    const c = await member();
    expectStatus(await whoami(c, c.token), 200);
    const res = await revoke(c.token, [c.account.id, c.token]);
    expectStatus(res, 200);
    expect(res.headers.get("cache-control") ?? "", res.text).toMatch(/no-store/);
    expectUnauthorized(await whoami(c, c.token));
    expectInactive(await introspect(c.token));
    // Idempotent: a second revocation is a 200 too (with another client, the secret being dead).
    expectStatus(await revoke(c.token, [root.id, root.token]), 200);
  });

  it("revoking a JWT by jti: 200, refused on the API, inactive, and a jti:<jti> record in KV until it expires", async () => {
    const c = await member();
    const jwt = await jwtFor(c.token, { duration_seconds: 600 });
    const { jti, exp } = jose.decodeJwt(jwt);
    expectStatus(await whoami(c, jwt), 200);
    expectStatus(await revoke(jwt, [c.account.id, c.token]), 200);
    expectUnauthorized(await whoami(c, jwt));
    expectInactive(await introspect(jwt));
    expect(await env.TOKENS.get(`jti:${jti}`), `jti:${jti}`).not.toBeNull();
    const listed = await env.TOKENS.list({ prefix: `jti:${jti}` });
    expect(listed.keys.map((k) => k.name)).toEqual([`jti:${jti}`]);
    const expiration = listed.keys[0]!.expiration!;
    expect(expiration, JSON.stringify(listed.keys)).toBeGreaterThanOrEqual(exp!);
    expect(expiration, JSON.stringify(listed.keys)).toBeLessThanOrEqual(exp! + 60);
    // The access token it came from is untouched.
    expectStatus(await whoami(c, c.token), 200);
  });

  it(
    "a revoked JWT stays refused after its exp, through the clock-skew window in which an unrevoked one is still accepted",
    async () => {
      const c = await member();
      const jwt = await jwtFor(c.token, { duration_seconds: 60 });
      const { exp, jti } = jose.decodeJwt(jwt);
      expectStatus(await revoke(jwt, [c.account.id, c.token]), 200);
      expectUnauthorized(await whoami(c, jwt));
      // Just past exp: verifyJwt still accepts the token's times (30 s tolerance), so only the
      // revocation record keeps it out; that record must not expire before the tolerance does.
      await sleep(exp! * 1000 + 3000 - Date.now());
      const res = await whoami(c, jwt);
      expect(res.status, `revoked JWT (jti ${jti}) ${Math.round(Date.now() / 1000) - exp!} s after exp: ${res.status} ${res.text.slice(0, 200)}`).toBe(401);
      expectInactive(await introspect(jwt));
    },
    100_000,
  );

  it("an unknown, garbage or already-dead token is a 200", async () => {
    const c = await member();
    for (const token of [generateAccessToken(), "garbage", "a.b.c", "sat_0123456789abcdefghijklmnopqrstuvwxyzAB"]) {
      const res = await revoke(token, [c.account.id, c.token]);
      expect(res.status, `${token}: ${res.text}`).toBe(200);
    }
    expectStatus(await whoami(c, c.token), 200);
  });

  it("another client's access token or JWT is 400 unauthorized_client, and stays valid", async () => {
    const owner = await member();
    const other = await member();
    const jwt = await jwtFor(owner.token);
    expectOAuthError(await revoke(owner.token, [other.account.id, other.token]), 400, "unauthorized_client");
    expectOAuthError(await revoke(jwt, [other.account.id, other.token]), 400, "unauthorized_client");
    expectStatus(await whoami(owner, owner.token), 200);
    expectStatus(await whoami(owner, jwt), 200);
  });

  it("the platform root may revoke anyone's access token and JWT", async () => {
    const c = await member();
    const jwt = await jwtFor(c.token);
    expectStatus(await revoke(jwt, [root.id, root.token]), 200);
    expectUnauthorized(await whoami(c, jwt));
    expectStatus(await revoke(c.token, [root.id, root.token]), 200);
    expectUnauthorized(await whoami(c, c.token));
  });
});

describe("introspection: our own JWTs are dead at their exp (RFC 7662 2.2), with no 30 s of grace", () => {
  it("a JWT whose exp passed 2 s ago is inactive, and refused as Bearer", async () => {
    const c = await member();
    const jwt = await signWithServiceKey(c.token, { typ: "at+jwt" }, standardClaims(c.account.id, { iat: nowS() - 60, exp: nowS() - 2 }));
    expectInactive(await introspect(jwt));
    expectUnauthorized(await whoami(c, jwt));
  });

  it("a real JWT is active until its exp and inactive just after", async () => {
    const c = await member();
    const jwt = await jwtFor(c.token, { duration_seconds: 2 });
    const { exp } = jose.decodeJwt(jwt);
    expect((await introspect(jwt)).json?.active).toBe(true);
    await sleep(exp! * 1000 + 200 - Date.now());
    expectInactive(await introspect(jwt));
    expectUnauthorized(await whoami(c, jwt));
  });
});

describe("introspection: a client sees only tokens it may (RFC 7662 4)", () => {
  it("a client of another org gets {active: false} for this org's access token and JWT", async () => {
    const c = await member({ roles: [{ role: "viewer" }] });
    const jwt = await jwtFor(c.token);
    const stranger = await newClient(root.token);
    expectInactive(await introspect(c.token, [stranger.account.id, stranger.token]));
    expectInactive(await introspect(jwt, [stranger.account.id, stranger.token]));
    // A platform account that is not root sees no org's tokens either.
    const platform = await call("POST", "/api/service-accounts", { token: root.token, body: { name: unique("platform-rs"), permissions: ["orgs.read"], tokenEndpointAuthMethod: "client_secret_basic" } });
    expectStatus(platform, 201);
    expectInactive(await introspect(jwt, [platform.json.clientId, platform.json.clientSecret]));
  });

  it("the holder itself, another account of its org and the platform root see them active", async () => {
    const c = await member({ roles: [{ role: "viewer" }] });
    const jwt = await jwtFor(c.token);
    for (const by of [[c.account.id, c.token], [rs.account.id, rs.token], [root.id, root.token]] as [string, string][]) {
      for (const token of [c.token, jwt]) {
        const res = await introspect(token, by);
        expect(res.json, `${by[0]} introspecting ${token.slice(0, 8)}: ${res.text}`).toMatchObject({ active: true, sub: c.account.id });
      }
    }
  });
});
