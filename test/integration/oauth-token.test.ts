import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import * as jose from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { generateAccessToken } from "../../src/domain/credentials/access-token.ts";
import { replaySlot } from "../../src/domain/credentials/replay.ts";
import { REPLAY_FLUSH_MS } from "../../src/durable-objects/account-credentials.ts";
import { ORG_OPERATIONS } from "../../src/domain/access/permissions.ts";
import { BASE, call, expectStatus, platformRoot, unique } from "../helpers.ts";
import {
  ACCESS_TOKEN_TYPE,
  API_AUDIENCE,
  basic,
  assertionGrant,
  clientAssertion,
  type AssertionAlg,
  type Client,
  DEFAULT_TTL,
  expectOAuthError,
  expectTokenResponse,
  ISSUER,
  JWT_BEARER,
  JWT_TOKEN_TYPE,
  jwtFor,
  keyPair,
  newClient,
  newKeyClient,
  nowS,
  postForm,
  sleep,
  TOKEN_EXCHANGE,
} from "./oauth-helpers.ts";

/** RFC 7523 section 2.1 (the federated grant, test/integration/federation-grant.test.ts). */
const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/** POST /oauth/token (and /api/m2m/oauth/token): client_credentials with three client auth methods, and RFC 8693 token exchange. */

const VIEWER_SCOPE = "audit.read orgs.read service-accounts.read";
const TOKEN_ENDPOINTS = ["/oauth/token", "/api/m2m/oauth/token"];

let root: { id: string; token: string };
let viewer: Client;
beforeAll(async () => {
  root = await platformRoot();
  viewer = await newClient(root.token, { roles: [{ role: "viewer" }] });
});

const keyClient = (alg: AssertionAlg, format: "pem" | "jwk", options: { algHint?: boolean } = {}) => newKeyClient(root.token, alg, format, options);

describe("client_credentials: client_secret_basic and client_secret_post", () => {
  it.each(TOKEN_ENDPOINTS)("client_secret_basic at %s", async (path) => {
    const res = await postForm(path, { grant_type: "client_credentials" }, { basic: [viewer.account.id, viewer.token] });
    const claims = await expectTokenResponse(res, viewer.account.id);
    expect(res.json.scope, res.text).toBe(VIEWER_SCOPE);
    expect(res.json.expires_in, res.text).toBe(DEFAULT_TTL);
    expect(claims.aud, res.text).toBe(ISSUER);
    expect(claims.org_id, res.text).toBe(viewer.org.id);
    expect(claims.roles, res.text).toEqual(["viewer"]);
  });

  it.each(TOKEN_ENDPOINTS)("client_secret_post at %s", async (path) => {
    const res = await postForm(path, { grant_type: "client_credentials", client_id: viewer.account.id, client_secret: viewer.token });
    await expectTokenResponse(res, viewer.account.id);
  });

  it("Basic is case-insensitive in its scheme and may repeat client_id in the body", async () => {
    const header = `basic ${btoa(`${viewer.account.id}:${viewer.token}`)}`;
    const res = await postForm("/oauth/token", { grant_type: "client_credentials", client_id: viewer.account.id }, { headers: { authorization: header } });
    await expectTokenResponse(res, viewer.account.id);
  });

  it("a form content-type with a charset parameter is accepted", async () => {
    const res = await postForm(
      "/oauth/token",
      { grant_type: "client_credentials", client_id: viewer.account.id, client_secret: viewer.token },
      { headers: { "content-type": "application/x-www-form-urlencoded; charset=UTF-8" } },
    );
    await expectTokenResponse(res, viewer.account.id);
  });

  it("scope narrows the grant", async () => {
    const res = await postForm("/oauth/token", { grant_type: "client_credentials", scope: "orgs.read" }, { basic: [viewer.account.id, viewer.token] });
    await expectTokenResponse(res, viewer.account.id);
    expect(res.json.scope, res.text).toBe("orgs.read");
  });

  it("the JWT never outlives the access token that authenticated the client", async () => {
    const short = await newClient(root.token, { issueToken: { expiresInSeconds: 120 } });
    const res = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [short.account.id, short.token] });
    const claims = await expectTokenResponse(res, short.account.id);
    expect(res.json.expires_in, res.text).toBeLessThanOrEqual(120);
    expect(claims.exp!, res.text).toBeLessThanOrEqual(nowS() + 120);
  });
});

describe("client_credentials: private_key_jwt", () => {
  it("ES256 key registered as PEM SPKI", async () => {
    const c = await keyClient("ES256", "pem");
    const res = await assertionGrant(await clientAssertion(c.privateKey, c.clientId, { kid: c.kid }));
    await expectTokenResponse(res, c.clientId);
    expect(res.json.scope, res.text).toBe(VIEWER_SCOPE);
  });

  it("ES256 key registered as a JWK (its kid kept), on both endpoints", async () => {
    const c = await keyClient("ES256", "jwk");
    expect(c.kid).toBe("jwk-ES256-1");
    for (const path of TOKEN_ENDPOINTS) {
      const res = await assertionGrant(await clientAssertion(c.privateKey, c.clientId, { kid: c.kid }), {}, path);
      await expectTokenResponse(res, c.clientId);
    }
  });

  it.each([
    ["EdDSA", "pem"],
    ["EdDSA", "jwk"],
    ["RS256", "pem"],
    ["RS256", "jwk"],
  ] as const)("%s key registered as %s", async (alg, format) => {
    const c = await keyClient(alg, format);
    const res = await assertionGrant(await clientAssertion(c.privateKey, c.clientId, { alg, kid: c.kid }));
    await expectTokenResponse(res, c.clientId);
  });

  it("RS256 key registered as PEM with an explicit alg", async () => {
    const c = await keyClient("RS256", "pem", { algHint: true });
    const res = await assertionGrant(await clientAssertion(c.privateKey, c.clientId, { alg: "RS256", kid: c.kid }));
    await expectTokenResponse(res, c.clientId);
  });

  it("accepts an assertion without kid, with client_id in the form, or addressed to the token endpoint URL", async () => {
    const c = await keyClient("ES256", "pem");
    await expectTokenResponse(await assertionGrant(await clientAssertion(c.privateKey, c.clientId)), c.clientId);
    await expectTokenResponse(await assertionGrant(await clientAssertion(c.privateKey, c.clientId, { kid: c.kid }), { client_id: c.clientId }), c.clientId);
    await expectTokenResponse(await assertionGrant(await clientAssertion(c.privateKey, c.clientId, { kid: c.kid, aud: `${ISSUER}/oauth/token` })), c.clientId);
  });

  it("a replayed assertion is 401 invalid_client (also at the other endpoint)", async () => {
    const c = await keyClient("ES256", "pem");
    const assertion = await clientAssertion(c.privateKey, c.clientId, { kid: c.kid });
    await expectTokenResponse(await assertionGrant(assertion), c.clientId);
    expectOAuthError(await assertionGrant(assertion), 401, "invalid_client");
    expectOAuthError(await assertionGrant(assertion, {}, "/api/m2m/oauth/token"), 401, "invalid_client");
  });

  it("20 parallel requests with the same assertion: exactly one 200, the rest 401", async () => {
    const c = await keyClient("ES256", "pem");
    const assertion = await clientAssertion(c.privateKey, c.clientId, { kid: c.kid });
    const statuses = (await Promise.all(Array.from({ length: 20 }, () => assertionGrant(assertion)))).map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 401)).toHaveLength(19);
  });

  it("a replay stays refused after the assertion's exp while the server would still accept it (clock skew window)", async () => {
    const c = await keyClient("ES256", "pem");
    const exp = nowS() + 2;
    const assertion = await clientAssertion(c.privateKey, c.clientId, { kid: c.kid, exp });
    await expectTokenResponse(await assertionGrant(assertion), c.clientId);
    // Past exp, but within the verifier's 30 s clock tolerance: the signature and times still pass,
    // so only the jti memory stands between the replay and a new token.
    await sleep(exp * 1000 + 1500 - Date.now());
    expectOAuthError(await assertionGrant(assertion), 401, "invalid_client");
  });

  it("an assertion valid for an hour (Authlib's PrivateKeyJWT default) passes once and is refused on replay", async () => {
    const c = await keyClient("ES256", "pem");
    const assertion = await clientAssertion(c.privateKey, c.clientId, { kid: c.kid, exp: nowS() + 3600 });
    await expectTokenResponse(await assertionGrant(assertion), c.clientId);
    expectOAuthError(await assertionGrant(assertion), 401, "invalid_client");
    // The replay cache holds the jti as long as the assertion lives: until its exp plus the skew.
    const slot = replaySlot("client-jwt", c.clientId, jose.decodeJwt(assertion).jti!);
    const stub = env.ACCOUNT_DO.get(env.ACCOUNT_DO.idFromName(slot.object));
    await sleep(REPLAY_FLUSH_MS * 3);
    const held = await runInDurableObject(stub, (_i, state) => [...state.storage.kv.list<number>({ prefix: slot.key })].map(([, until]) => until));
    expect(held.length, JSON.stringify(held)).toBe(1);
    expect(held[0]!, JSON.stringify(held)).toBeGreaterThanOrEqual((nowS() + 3600) * 1000);
  });

  it("an assertion whose exp is beyond MAX_CLIENT_ASSERTION_LIFETIME_SECONDS (3600 s) and the skew is 401, saying so", async () => {
    const c = await keyClient("ES256", "pem");
    const res = await assertionGrant(await clientAssertion(c.privateKey, c.clientId, { kid: c.kid, exp: nowS() + 3600 + 120 }));
    const body = expectOAuthError(res, 401, "invalid_client");
    expect(body.error_description, res.text).toContain("MAX_CLIENT_ASSERTION_LIFETIME_SECONDS (3600 s)");
    // 4 minutes is fine.
    await expectTokenResponse(await assertionGrant(await clientAssertion(c.privateKey, c.clientId, { kid: c.kid, exp: nowS() + 240 })), c.clientId);
  });

  it("an expired assertion is 401", async () => {
    const c = await keyClient("ES256", "pem");
    expectOAuthError(await assertionGrant(await clientAssertion(c.privateKey, c.clientId, { kid: c.kid, exp: nowS() - 120 })), 401, "invalid_client");
  });

  it("an assertion without jti is 401", async () => {
    const c = await keyClient("ES256", "pem");
    expectOAuthError(await assertionGrant(await clientAssertion(c.privateKey, c.clientId, { kid: c.kid, jti: null })), 401, "invalid_client");
  });

  it.each(["https://evil.test", "http://localhost:8787/other", "http://localhost:8788"])("an assertion for aud %s is 401", async (aud) => {
    const c = await keyClient("ES256", "pem");
    expectOAuthError(await assertionGrant(await clientAssertion(c.privateKey, c.clientId, { kid: c.kid, aud })), 401, "invalid_client");
  });

  it("iss or sub other than the client is 401; client_id not matching the assertion is 401", async () => {
    const c = await keyClient("ES256", "pem");
    const other = await keyClient("ES256", "pem");
    expectOAuthError(await assertionGrant(await clientAssertion(c.privateKey, c.clientId, { kid: c.kid, iss: other.clientId })), 401, "invalid_client");
    expectOAuthError(await assertionGrant(await clientAssertion(c.privateKey, c.clientId, { kid: c.kid, sub: other.clientId })), 401, "invalid_client");
    expectOAuthError(await assertionGrant(await clientAssertion(c.privateKey, c.clientId, { kid: c.kid }), { client_id: other.clientId }), 401, "invalid_client");
  });

  it("an assertion signed by an unregistered key is 401 (with the registered kid, and without kid)", async () => {
    const c = await keyClient("ES256", "pem");
    const stranger = await keyPair("ES256");
    expectOAuthError(await assertionGrant(await clientAssertion(stranger.privateKey, c.clientId, { kid: c.kid })), 401, "invalid_client");
    expectOAuthError(await assertionGrant(await clientAssertion(stranger.privateKey, c.clientId)), 401, "invalid_client");
    // Another client's registered key does not authenticate this client either.
    const other = await keyClient("ES256", "pem");
    expectOAuthError(await assertionGrant(await clientAssertion(other.privateKey, c.clientId, { kid: other.kid })), 401, "invalid_client");
  });

  it("an assertion by a disabled account is 401", async () => {
    const c = await keyClient("ES256", "pem");
    const patched = await call("PATCH", `/api/v1/orgs/${c.org.id}/service-accounts/${c.clientId}`, { token: root.token, body: { status: "disabled" } });
    expectStatus(patched, 200);
    expectOAuthError(await assertionGrant(await clientAssertion(c.privateKey, c.clientId, { kid: c.kid })), 401, "invalid_client");
  });

  it("a wrong client_assertion_type is 400 invalid_request", async () => {
    const c = await keyClient("ES256", "pem");
    const assertion = await clientAssertion(c.privateKey, c.clientId, { kid: c.kid });
    const res = await postForm("/oauth/token", {
      grant_type: "client_credentials",
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
      client_assertion: assertion,
    });
    expectOAuthError(res, 400, "invalid_request");
    // Missing type: same.
    expectOAuthError(await postForm("/oauth/token", { grant_type: "client_credentials", client_assertion: assertion }), 400, "invalid_request");
  });

  it("an assertion with alg none, or HS256 keyed with the registered public key, is 401", async () => {
    const c = await keyClient("ES256", "jwk");
    const claims = { iss: c.clientId, sub: c.clientId, aud: ISSUER, exp: nowS() + 60, iat: nowS() };
    const enc = (v: unknown) => jose.base64url.encode(JSON.stringify(v));
    const none = `${enc({ alg: "none", kid: c.kid })}.${enc({ ...claims, jti: crypto.randomUUID() })}.`;
    expectOAuthError(await assertionGrant(none), 401, "invalid_client");
    const list = await call("GET", `/api/v1/orgs/${c.org.id}/service-accounts/${c.clientId}/keys`, { token: root.token });
    const jwk = list.json.items[0].jwk;
    for (const secret of [JSON.stringify(jwk), JSON.stringify({ ...jwk, kid: c.kid })]) {
      const hs = await new jose.SignJWT({ ...claims, jti: crypto.randomUUID() })
        .setProtectedHeader({ alg: "HS256", kid: c.kid })
        .sign(new TextEncoder().encode(secret));
      expectOAuthError(await assertionGrant(hs), 401, "invalid_client");
    }
  });

  it("a client assertion that is not a JWT is 401", async () => {
    expectOAuthError(await assertionGrant("not-a-jwt"), 401, "invalid_client");
  });
});

describe("token endpoint errors (RFC 6749 §5.2)", () => {
  it("a wrong secret with Basic is 401 invalid_client with a Basic challenge", async () => {
    const res = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [viewer.account.id, "sat_wrong"] });
    expectOAuthError(res, 401, "invalid_client");
    expect(res.headers.get("www-authenticate") ?? "", res.text).toMatch(/^Basic\b/);
  });

  it("another account's valid token is not this client's secret", async () => {
    const other = await newClient(root.token);
    const basic = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [viewer.account.id, other.token] });
    expectOAuthError(basic, 401, "invalid_client");
    expect(basic.headers.get("www-authenticate") ?? "", basic.text).toMatch(/^Basic\b/);
    expectOAuthError(
      await postForm("/oauth/token", { grant_type: "client_credentials", client_id: viewer.account.id, client_secret: other.token }),
      401,
      "invalid_client",
    );
  });

  it("a malformed Basic header is 401 invalid_client", async () => {
    const res = await postForm("/oauth/token", { grant_type: "client_credentials" }, { headers: { authorization: "Basic !!!not-base64" } });
    expectOAuthError(res, 401, "invalid_client");
    expect(res.headers.get("www-authenticate") ?? "", res.text).toMatch(/^Basic\b/);
  });

  it("no client authentication is 401 invalid_client", async () => {
    expectOAuthError(await postForm("/oauth/token", { grant_type: "client_credentials" }), 401, "invalid_client");
    expectOAuthError(await postForm("/oauth/token", { grant_type: "client_credentials", client_id: viewer.account.id }), 401, "invalid_client");
  });

  it("two authentication methods at once are 400 invalid_request", async () => {
    const both = await postForm(
      "/oauth/token",
      { grant_type: "client_credentials", client_id: viewer.account.id, client_secret: viewer.token },
      { basic: [viewer.account.id, viewer.token] },
    );
    expectOAuthError(both, 400, "invalid_request");
    const c = await keyClient("ES256", "pem");
    const assertion = await clientAssertion(c.privateKey, c.clientId, { kid: c.kid });
    const secretAndAssertion = await postForm("/oauth/token", {
      grant_type: "client_credentials",
      client_id: c.clientId,
      client_secret: viewer.token,
      client_assertion_type: JWT_BEARER,
      client_assertion: assertion,
    });
    expectOAuthError(secretAndAssertion, 400, "invalid_request");
  });

  it("a missing grant_type is 400 invalid_request", async () => {
    expectOAuthError(await postForm("/oauth/token", {}, { basic: [viewer.account.id, viewer.token] }), 400, "invalid_request");
  });

  it.each(["password", "authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:saml2-bearer"])(
    "grant_type=%s is 400 unsupported_grant_type",
    async (grant) => {
      expectOAuthError(await postForm("/oauth/token", { grant_type: grant }, { basic: [viewer.account.id, viewer.token] }), 400, "unsupported_grant_type");
    },
  );

  it.each(["roles.edit", "nonsense", "orgs.read platform.root"])("scope %s beyond the client's is 400 invalid_scope", async (scope) => {
    const res = await postForm("/oauth/token", { grant_type: "client_credentials", scope }, { basic: [viewer.account.id, viewer.token] });
    expectOAuthError(res, 400, "invalid_scope");
  });

  it("a JSON body is 400 invalid_request", async () => {
    const res = await call("POST", "/oauth/token", {
      body: { grant_type: "client_credentials", client_id: viewer.account.id, client_secret: viewer.token },
    });
    expectOAuthError(res, 400, "invalid_request");
  });

  it("a form body without its content-type is 400 invalid_request", async () => {
    const res = await call("POST", "/oauth/token", {
      body: `grant_type=client_credentials&client_id=${viewer.account.id}&client_secret=${viewer.token}`,
      headers: { "content-type": "text/plain" },
    });
    expectOAuthError(res, 400, "invalid_request");
  });

  it.each(["scope", "grant_type", "client_secret"])("a repeated parameter (%s twice) is 400 invalid_request", async (param) => {
    const params: Record<string, string | string[]> = { grant_type: "client_credentials", client_id: viewer.account.id, client_secret: viewer.token };
    params[param] = param === "scope" ? ["orgs.read", "audit.read"] : [params[param] as string, params[param] as string];
    expectOAuthError(await postForm("/oauth/token", params), 400, "invalid_request");
  });

  it("parameter bounds: 8,192 characters (2,048 and 10 values for resource/audience); unknown parameters are ignored", async () => {
    const basic = { basic: [viewer.account.id, viewer.token] as [string, string] };
    const form = (extra: Record<string, string | string[]>) => postForm("/oauth/token", { grant_type: "client_credentials", ...extra }, basic);
    await expectTokenResponse(await form({ subject_token: "s".repeat(8192) }), viewer.account.id);
    const bad: Record<string, string | string[]>[] = [{ subject_token: "s".repeat(8193) }, { resource: `${API_AUDIENCE}/${"r".repeat(2048)}` }, { audience: Array.from({ length: 11 }, () => API_AUDIENCE) }, { resource: [API_AUDIENCE, "r".repeat(2049)] }];
    for (const extra of bad) {
      const res = await form(extra);
      expectOAuthError(res, 400, "invalid_request");
      expect(res.json.error_description).toBe("Malformed parameters");
    }
    const ok = await form({ audience: Array.from({ length: 10 }, () => API_AUDIENCE), unknown: ["a", "b"], ["__proto__"]: "x", constructor: "y" });
    expect((await expectTokenResponse(ok, viewer.account.id)).aud).toEqual(Array.from({ length: 10 }, () => API_AUDIENCE));
  });

  it("a body over MAX_BODY_BYTES is refused with an RFC 6749 error body", async () => {
    const res = await postForm("/oauth/token", { grant_type: "client_credentials", scope: "x".repeat(70_000) }, { basic: [viewer.account.id, viewer.token] });
    expect([400, 413], `${res.status}: ${res.text}`).toContain(res.status);
    expectOAuthError(res, res.status, "invalid_request");
  });
});

describe("resource indicators (RFC 8707)", () => {
  it("resource=https://api.example.test sets aud", async () => {
    const res = await postForm("/oauth/token", { grant_type: "client_credentials", resource: API_AUDIENCE }, { basic: [viewer.account.id, viewer.token] });
    const claims = await expectTokenResponse(res, viewer.account.id);
    expect(claims.aud, res.text).toBe(API_AUDIENCE);
  });

  it("audience= works the same, and two resources give an aud array", async () => {
    const aud = await postForm("/oauth/token", { grant_type: "client_credentials", audience: API_AUDIENCE }, { basic: [viewer.account.id, viewer.token] });
    expect((await expectTokenResponse(aud, viewer.account.id)).aud).toBe(API_AUDIENCE);
    const two = await postForm("/oauth/token", { grant_type: "client_credentials", resource: [API_AUDIENCE, ISSUER] }, { basic: [viewer.account.id, viewer.token] });
    expect(two.status, two.text).toBe(200);
    expect(jose.decodeJwt(two.json.access_token).aud, two.text).toEqual([API_AUDIENCE, ISSUER]);
  });

  it.each(["https://evil.test", "https://api.example.test.evil.test", "https://api.example.test/"])("resource=%s is 400 invalid_target", async (resource) => {
    const res = await postForm("/oauth/token", { grant_type: "client_credentials", resource }, { basic: [viewer.account.id, viewer.token] });
    expectOAuthError(res, 400, "invalid_target");
  });
});

describe("token exchange (RFC 8693)", () => {
  const exchangeForm = (subject: string, extra: Record<string, string | string[]> = {}) =>
    postForm("/oauth/token", { grant_type: TOKEN_EXCHANGE, subject_token: subject, subject_token_type: ACCESS_TOKEN_TYPE, ...extra });

  it("an access token as subject gives a JWT with issued_token_type", async () => {
    const res = await exchangeForm(viewer.token);
    await expectTokenResponse(res, viewer.account.id, ["issued_token_type"]);
    expect(res.json.issued_token_type, res.text).toBe(ACCESS_TOKEN_TYPE);
    expect(res.json.scope, res.text).toBe(VIEWER_SCOPE);
  });

  it("a JWT as subject: the new JWT has the subject's scope, never more", async () => {
    const subject = await jwtFor(viewer.token, { scope: "orgs.read" });
    const res = await exchangeForm(subject);
    await expectTokenResponse(res, viewer.account.id, ["issued_token_type"]);
    expect(res.json.scope, res.text).toBe("orgs.read");
    // The account may hold service-accounts.read, but the subject JWT does not.
    expectOAuthError(await exchangeForm(subject, { scope: "service-accounts.read" }), 400, "invalid_scope");
    expectOAuthError(await exchangeForm(subject, { scope: "orgs.read audit.read" }), 400, "invalid_scope");
    // Within it is fine; the jwt token type is accepted for the subject too.
    const jwtTyped = await exchangeForm(subject, { scope: "orgs.read", subject_token_type: JWT_TOKEN_TYPE });
    await expectTokenResponse(jwtTyped, viewer.account.id, ["issued_token_type"]);
  });

  it("the new JWT never expires after the subject JWT", async () => {
    const subject = await jwtFor(viewer.token, { duration_seconds: 60 });
    const subjectExp = jose.decodeJwt(subject).exp!;
    const res = await exchangeForm(subject);
    const claims = await expectTokenResponse(res, viewer.account.id, ["issued_token_type"]);
    expect(claims.exp!, `subject exp ${subjectExp}, new ${res.text}`).toBeLessThanOrEqual(subjectExp);
    expect(res.json.expires_in, res.text).toBeLessThanOrEqual(60);
  });

  it("resource applies to the exchanged JWT", async () => {
    const res = await exchangeForm(viewer.token, { resource: API_AUDIENCE });
    const claims = await expectTokenResponse(res, viewer.account.id, ["issued_token_type"]);
    expect(claims.aud).toBe(API_AUDIENCE);
    expectOAuthError(await exchangeForm(viewer.token, { resource: "https://evil.test" }), 400, "invalid_target");
  });

  it("a revoked, forged or garbage subject token is 400 invalid_grant", async () => {
    const subject = await jwtFor(viewer.token);
    expectStatus(await postForm("/oauth/revoke", { token: subject }, { basic: [viewer.account.id, viewer.token] }), 200);
    expectOAuthError(await exchangeForm(subject), 400, "invalid_grant");
    const [h, p] = (await jwtFor(viewer.token)).split(".");
    expectOAuthError(await exchangeForm(`${h}.${p}.AAAA`), 400, "invalid_grant");
    expectOAuthError(await exchangeForm("garbage"), 400, "invalid_grant");
    expectOAuthError(await exchangeForm("sat_0123456789abcdefghijklmnopqrstuvwxyzAB"), 400, "invalid_grant");
  });

  it("missing subject_token or an unsupported subject_token_type is 400 invalid_request", async () => {
    expectOAuthError(await postForm("/oauth/token", { grant_type: TOKEN_EXCHANGE, subject_token_type: ACCESS_TOKEN_TYPE }), 400, "invalid_request");
    expectOAuthError(await exchangeForm(viewer.token, { subject_token_type: "urn:ietf:params:oauth:token-type:refresh_token" }), 400, "invalid_request");
    expectOAuthError(await exchangeForm(viewer.token, { requested_token_type: "urn:ietf:params:oauth:token-type:refresh_token" }), 400, "invalid_request");
  });
});

describe("audience and registered method are not widened", () => {
  it("a JWT minted for a downstream audience cannot be exchanged back into one for Keyward", async () => {
    const c = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const downstream = await postForm("/oauth/token", { grant_type: "client_credentials", resource: API_AUDIENCE }, { basic: [c.account.id, c.token] });
    expectStatus(downstream, 200);
    const res = await postForm("/oauth/token", { grant_type: TOKEN_EXCHANGE, subject_token: downstream.json.access_token, subject_token_type: ACCESS_TOKEN_TYPE });
    expectOAuthError(res, 400, "invalid_grant");
  });

  it("a platform client registered for client_secret_basic cannot authenticate by client_secret_post", async () => {
    const created = await call("POST", "/api/service-accounts", {
      token: root.token,
      body: { name: unique("basic-only"), permissions: ["service-accounts.read"], tokenEndpointAuthMethod: "client_secret_basic" },
    });
    expectStatus(created, 201);
    const { clientId, clientSecret } = created.json;
    expectStatus(await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [clientId, clientSecret] }), 200);
    const post = await postForm("/oauth/token", { grant_type: "client_credentials", client_id: clientId, client_secret: clientSecret });
    expectOAuthError(post, 401, "invalid_client");
  });
});

describe("token exchange (RFC 8693): presented client credentials are verified (RFC 6749 2.3)", () => {
  const exchangeForm = (extra: Record<string, string> = {}, options: { basic?: [string, string] } = {}) =>
    postForm("/oauth/token", { grant_type: TOKEN_EXCHANGE, subject_token: viewer.token, subject_token_type: ACCESS_TOKEN_TYPE, ...extra }, options);

  it("a wrong secret in Basic is 401 invalid_client with a Basic challenge, and issues nothing", async () => {
    const res = await exchangeForm({}, { basic: [viewer.account.id, generateAccessToken()] });
    expectOAuthError(res, 401, "invalid_client");
    expect(res.headers.get("www-authenticate") ?? "", res.text).toMatch(/^Basic\b/);
  });

  it("a wrong client_secret_post, another account's secret, or a bad or replayed assertion is 401 invalid_client", async () => {
    const other = await newClient(root.token);
    expectOAuthError(await exchangeForm({ client_id: viewer.account.id, client_secret: generateAccessToken() }), 401, "invalid_client");
    expectOAuthError(await exchangeForm({}, { basic: [viewer.account.id, other.token] }), 401, "invalid_client");
    const c = await keyClient("ES256", "pem");
    const stranger = await keyPair("ES256");
    const forged = await clientAssertion(stranger.privateKey, c.clientId, { kid: c.kid });
    expectOAuthError(await exchangeForm({ client_assertion_type: JWT_BEARER, client_assertion: forged }), 401, "invalid_client");
    const good = await clientAssertion(c.privateKey, c.clientId, { kid: c.kid });
    await expectTokenResponse(await exchangeForm({ client_assertion_type: JWT_BEARER, client_assertion: good }), viewer.account.id, ["issued_token_type"]);
    expectOAuthError(await exchangeForm({ client_assertion_type: JWT_BEARER, client_assertion: good }), 401, "invalid_client");
  });

  it("the right client credentials, or none at all (the subject token is the credential), give the JWT", async () => {
    await expectTokenResponse(await exchangeForm({}, { basic: [viewer.account.id, viewer.token] }), viewer.account.id, ["issued_token_type"]);
    await expectTokenResponse(await exchangeForm({ client_id: viewer.account.id, client_secret: viewer.token }), viewer.account.id, ["issued_token_type"]);
    await expectTokenResponse(await exchangeForm(), viewer.account.id, ["issued_token_type"]);
    // A client_id alone is no client authentication: nothing to verify.
    await expectTokenResponse(await exchangeForm({ client_id: viewer.account.id }), viewer.account.id, ["issued_token_type"]);
  });
});

describe("scope present but empty (RFC 6749 3.3)", () => {
  it.each(["", " ", "   "])("scope=%j is 400 invalid_scope for client_credentials and token exchange, telling to omit scope", async (scope) => {
    const cc = await postForm("/oauth/token", { grant_type: "client_credentials", scope }, { basic: [viewer.account.id, viewer.token] });
    expect(expectOAuthError(cc, 400, "invalid_scope").error_description, cc.text).toMatch(/omit scope/);
    const te = await postForm("/oauth/token", { grant_type: TOKEN_EXCHANGE, subject_token: viewer.token, subject_token_type: ACCESS_TOKEN_TYPE, scope });
    expect(expectOAuthError(te, 400, "invalid_scope").error_description, te.text).toMatch(/omit scope/);
  });

  it("without scope the JWT carries every scope the account may request (unchanged)", async () => {
    const res = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [viewer.account.id, viewer.token] });
    await expectTokenResponse(res, viewer.account.id);
    expect(res.json.scope, res.text).toBe(VIEWER_SCOPE);
  });
});

describe("form bodies that are not well-formed UTF-8", () => {
  const rawPost = async (path: string, bytes: Uint8Array, authorization?: string) => {
    const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded", "content-length": String(bytes.byteLength) };
    if (authorization) headers.authorization = authorization;
    const res = await exports.default.fetch(new Request(`${BASE}${path}`, { method: "POST", headers, body: bytes }));
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: JSON.parse(text) };
  };
  const concat = (...parts: (string | Uint8Array)[]) => {
    const chunks = parts.map((p) => (typeof p === "string" ? new TextEncoder().encode(p) : p));
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of chunks) (out.set(c, o), (o += c.length));
    return out;
  };
  const BAD = [Uint8Array.of(0xff), Uint8Array.of(0xc3, 0x28), Uint8Array.of(0xc0, 0x80), Uint8Array.of(0xed, 0xa0, 0x80)];

  it.each(["/oauth/token", "/api/m2m/oauth/token", "/oauth/introspect", "/oauth/revoke"])("%s: 400 invalid_request, for a bad byte in a value or a name", async (path) => {
    for (const bad of BAD) {
      for (const body of [concat("grant_type=client_credentials&scope=orgs.read", bad), concat("grant_type=client_credentials&token=x&", bad, "=1")]) {
        const res = await rawPost(path, body, basic(viewer.account.id, viewer.token));
        const err = expectOAuthError(res, 400, "invalid_request");
        expect(err.error_description, res.text).toMatch(/UTF-8/);
      }
    }
  });

  it("well-formed UTF-8 beyond ASCII is decoded (a refused scope, not a refused body)", async () => {
    const res = await rawPost("/oauth/token", concat("grant_type=client_credentials&scope=", "café"), basic(viewer.account.id, viewer.token));
    expectOAuthError(res, 400, "invalid_scope");
  });
});

describe("discovery (RFC 8414)", () => {
  it("/.well-known/openid-configuration serves the same metadata as /.well-known/oauth-authorization-server", async () => {
    const oauth = await call("GET", "/.well-known/oauth-authorization-server");
    const openid = await call("GET", "/.well-known/openid-configuration");
    expectStatus(oauth, 200);
    expectStatus(openid, 200);
    expect(openid.json, openid.text).toEqual(oauth.json);
    // Nothing of OpenID Connect is claimed: no authorization endpoint, no id_token, no userinfo.
    expect(openid.json.response_types_supported, openid.text).toEqual(["none"]);
    for (const member of ["authorization_endpoint", "userinfo_endpoint", "id_token_signing_alg_values_supported", "subject_types_supported"]) {
      expect(openid.json, openid.text).not.toHaveProperty(member);
    }
  });

  it("grant_types_supported is the token endpoint's registry; scopes_supported lists the org-level operations, not platform.root", async () => {
    const res = await call("GET", "/.well-known/oauth-authorization-server");
    expect(res.json.grant_types_supported, res.text).toEqual(["client_credentials", TOKEN_EXCHANGE, JWT_BEARER_GRANT]);
    expect(res.json.scopes_supported, res.text).not.toContain("platform.root");
    expect(res.json.scopes_supported, res.text).toEqual(ORG_OPERATIONS);
    const unsupported = await postForm("/oauth/token", { grant_type: "password" });
    expect(expectOAuthError(unsupported, 400, "unsupported_grant_type").error_description, unsupported.text).toBe(`Supported grant types: client_credentials, ${TOKEN_EXCHANGE}, ${JWT_BEARER_GRANT}`);
  });
});
