import { env } from "cloudflare:workers";
import * as jose from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { accountObject } from "../../src/domain/credentials/account-object.ts";
import { createCtx } from "../../src/domain/shared/context.ts";
import { MAX_EXCHANGE_DEPTH, verifyJwt } from "../../src/domain/signing/jwt.ts";
import { call, expectStatus, platformRoot } from "../helpers.ts";
import {
  ACCESS_TOKEN_TYPE,
  assertionGrant,
  clientAssertion,
  type Client,
  expectOAuthError,
  expectUnauthorized,
  ISSUER,
  JWT_TOKEN_TYPE,
  jwtFor,
  MAX_TTL,
  newClient,
  newKeyClient,
  nowS,
  postForm,
  type Res,
  TOKEN_EXCHANGE,
} from "./oauth-helpers.ts";

/**
 * A JWT dies with its source. Every JWT names the access token at the root of its lineage
 * (`source_token_id`) and the jtis of the JWTs it was exchanged from (`source_jtis`, oldest first,
 * at most MAX_EXCHANGE_DEPTH); revoking the access token (a `revoked-token:<id>` marker in KV) or
 * any of those JWTs (`jti:<jti>`) kills it, on the management API, in introspection and as an
 * RFC 8693 subject token.
 */

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

const exchangeJwt = (subject: string, type = JWT_TOKEN_TYPE) => postForm("/oauth/token", { grant_type: TOKEN_EXCHANGE, subject_token: subject, subject_token_type: type });

/** The JWT exchanged (RFC 8693) from `subject`, asserting success. */
async function exchangedFrom(subject: string): Promise<string> {
  const res = await exchangeJwt(subject);
  expectStatus(res, 200);
  return res.json.access_token as string;
}

const claims = (jwt: string) => jose.decodeJwt(jwt) as jose.JWTPayload & { source_token_id?: string; source_jtis?: string[] };
const whoami = (token: string) => call("GET", "/api/v1/orgs", { token });
const introspect = (token: string, c: Client) => postForm("/oauth/introspect", { token }, { basic: [c.account.id, c.token] });
const revokeToken = (c: Client) => call("DELETE", `/api/v1/orgs/${c.org.id}/service-accounts/${c.account.id}/tokens/${c.tokenId}`, { token: root.token });

/** `jwt` is dead at every point: Bearer, introspection (by root, who may see anything), and as a subject token. */
async function expectDead(jwt: string, label: string) {
  const bearer = await whoami(jwt);
  expect(bearer.status, `${label} as Bearer: ${bearer.text}`).toBe(401);
  const inspected = await postForm("/oauth/introspect", { token: jwt }, { basic: [root.id, root.token] });
  expect(inspected.json, `${label} introspected: ${inspected.text}`).toStrictEqual({ active: false });
  const exchanged: Res = await exchangeJwt(jwt);
  expectOAuthError(exchanged, 400, "invalid_grant");
}

async function expectAlive(jwt: string, label: string) {
  expect((await whoami(jwt)).status, `${label} as Bearer`).toBe(200);
  const inspected = await postForm("/oauth/introspect", { token: jwt }, { basic: [root.id, root.token] });
  expect(inspected.json?.active, `${label} introspected: ${inspected.text}`).toBe(true);
}

describe("the source claims", () => {
  it("a JWT from an access token names it; each exchange appends the subject's jti", async () => {
    const c = await newClient(root.token);
    const j0 = await jwtFor(c.token);
    expect(claims(j0).source_token_id, JSON.stringify(claims(j0))).toBe(c.tokenId);
    expect(claims(j0).source_jtis, JSON.stringify(claims(j0))).toBeUndefined();
    const j1 = await exchangedFrom(j0);
    expect(claims(j1), JSON.stringify(claims(j1))).toMatchObject({ source_token_id: c.tokenId, source_jtis: [claims(j0).jti] });
    const j2 = await exchangedFrom(j1);
    expect(claims(j2), JSON.stringify(claims(j2))).toMatchObject({ source_token_id: c.tokenId, source_jtis: [claims(j0).jti, claims(j1).jti] });
  });

  it("client_credentials by client secret names the token; by private_key_jwt, nothing (the key is no token)", async () => {
    const c = await newClient(root.token);
    const bySecret = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [c.account.id, c.token] });
    expectStatus(bySecret, 200);
    expect(claims(bySecret.json.access_token).source_token_id).toBe(c.tokenId);
    const k = await newKeyClient(root.token, "ES256", "pem");
    const byKey = await assertionGrant(await clientAssertion(k.privateKey, k.clientId, { kid: k.kid }));
    expectStatus(byKey, 200);
    const keyClaims = claims(byKey.json.access_token);
    expect(keyClaims.source_token_id, JSON.stringify(keyClaims)).toBeUndefined();
    expect(keyClaims.source_jtis, JSON.stringify(keyClaims)).toBeUndefined();
    // ...and its exchanges carry the key-authenticated JWT's jti.
    expect(claims(await exchangedFrom(byKey.json.access_token)).source_jtis).toEqual([keyClaims.jti]);
  });

  it(`an exchange chain ends after ${MAX_EXCHANGE_DEPTH} exchanges of JWTs: invalid_grant, saying to exchange the access token`, async () => {
    const c = await newClient(root.token);
    let jwt = await jwtFor(c.token);
    for (let i = 0; i < MAX_EXCHANGE_DEPTH; i++) jwt = await exchangedFrom(jwt);
    expect(claims(jwt).source_jtis).toHaveLength(MAX_EXCHANGE_DEPTH);
    await expectAlive(jwt, "the last JWT of the chain");
    const res = await exchangeJwt(jwt);
    expect(expectOAuthError(res, 400, "invalid_grant").error_description, res.text).toMatch(/exchange the access token/);
  });
});

describe("revoking the access token kills every JWT minted from it", () => {
  it("attack: a JWT minted before the revocation no longer mints JWTs by token exchange, nor authenticates", async () => {
    const c = await newClient(root.token);
    const j0 = await jwtFor(c.token, { duration_seconds: MAX_TTL });
    const j1 = await exchangedFrom(j0);
    expectStatus(await revokeToken(c), 204);
    await expectDead(j0, "JWT minted from the revoked token");
    await expectDead(j1, "JWT exchanged from that JWT");
  });

  it("the same for JWTs from client_credentials, from RFC 8693 with the access token as subject, and by /oauth/revoke of the token", async () => {
    const c = await newClient(root.token);
    const cc = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [c.account.id, c.token] });
    expectStatus(cc, 200);
    const te = await exchangeJwt(c.token, ACCESS_TOKEN_TYPE);
    expectStatus(te, 200);
    expectStatus(await postForm("/oauth/revoke", { token: c.token }, { basic: [c.account.id, c.token] }), 200);
    await expectDead(cc.json.access_token, "client_credentials JWT");
    await expectDead(te.json.access_token, "token-exchange JWT");
  });

  it("revoking every token of an account (the expiry job's revokeAll) kills their JWTs; other accounts' JWTs live", async () => {
    const c = await newClient(root.token);
    const other = await newClient(root.token, {}, c.org.id);
    const jwt = await jwtFor(c.token);
    const otherJwt = await jwtFor(other.token);
    const ctx = createCtx(env, { actorId: "test", requestId: null, ip: null, userAgent: null });
    const outcome = await accountObject(ctx, c.account.id).revokeAll(c.account.id, "test");
    expect(outcome, JSON.stringify(outcome)).toMatchObject({ ok: true, value: { revoked: 1 } });
    await expectDead(jwt, "JWT of a revokeAll'd token");
    await expectAlive(otherJwt, "another account's JWT");
  });

  it("the marker is revoked-token:<token id> in KV, kept at least as long as the longest JWT may live", async () => {
    const c = await newClient(root.token);
    expectStatus(await revokeToken(c), 204);
    const listed = await env.TOKENS.list({ prefix: `revoked-token:${c.tokenId}` });
    expect(listed.keys.map((k) => k.name)).toEqual([`revoked-token:${c.tokenId}`]);
    // AUTHORIZE_JWT_TTL_SECONDS (86,400) is the longest lifetime in this configuration.
    expect(listed.keys[0]!.expiration!, JSON.stringify(listed.keys)).toBeGreaterThanOrEqual(nowS() + 86_400);
  });

  it("regenerating the token (same token, new secret) leaves its JWTs alive", async () => {
    const c = await newClient(root.token);
    const jwt = await jwtFor(c.token);
    const res = await call("POST", `/api/v1/orgs/${c.org.id}/service-accounts/${c.account.id}/tokens/${c.tokenId}/regenerate`, { token: root.token, body: { graceSeconds: 0 } });
    expectStatus(res, 200);
    await expectAlive(jwt, "JWT of a regenerated token");
  });
});

describe("revoking a JWT by jti (RFC 7009) kills the JWTs exchanged from it", () => {
  it("attack: revoke the first JWT of a chain, and its descendants are dead; its parent, its siblings and the token live", async () => {
    const c = await newClient(root.token);
    const j0 = await jwtFor(c.token, { duration_seconds: MAX_TTL });
    const sibling = await jwtFor(c.token);
    const j1 = await exchangedFrom(j0);
    const j2 = await exchangedFrom(j1);
    const j1b = await exchangedFrom(j0);
    expectStatus(await postForm("/oauth/revoke", { token: j1 }, { basic: [c.account.id, c.token] }), 200);
    await expectDead(j1, "the revoked JWT");
    await expectDead(j2, "a JWT exchanged from it");
    await expectAlive(j0, "its parent");
    await expectAlive(j1b, "its sibling exchanged from the same parent");
    expectStatus(await postForm("/oauth/revoke", { token: j0 }, { basic: [c.account.id, c.token] }), 200);
    await expectDead(j1b, "the sibling, once the parent is revoked");
    await expectAlive(sibling, "a JWT of the same token outside the chain");
    expectStatus(await whoami(c.token), 200);
  });
});

describe("the cost of the lineage check", () => {
  it("verifying a JWT deep in a chain reads KV once (one bulk get), as the jti check alone did", async () => {
    const c = await newClient(root.token);
    let jwt = await jwtFor(c.token);
    for (let i = 0; i < MAX_EXCHANGE_DEPTH; i++) jwt = await exchangedFrom(jwt);
    let reads = 0;
    const counted = new Proxy(env.TOKENS, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (prop !== "get" || typeof value !== "function") return typeof value === "function" ? value.bind(target) : value;
        return (...args: unknown[]) => {
          reads++;
          return Reflect.apply(value, target, args);
        };
      },
    });
    const ctx = createCtx({ ...env, TOKENS: counted }, { actorId: "test", requestId: null, ip: null, userAgent: null });
    expect(await verifyJwt(ctx, jwt, ISSUER), "warm-up (reads the keyset)").not.toBeNull();
    reads = 0;
    expect(await verifyJwt(ctx, jwt, ISSUER)).not.toBeNull();
    expect(reads, "KV reads per verification").toBe(1);
  });
});
