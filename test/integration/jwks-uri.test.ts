import { env } from "cloudflare:workers";
import * as jose from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { clientJwks } from "../../src/domain/credentials/client-jwks.ts";
import { REFRESH_EVERY_MS } from "../../src/domain/credentials/remote-keys.ts";
import { createCtx } from "../../src/domain/shared/context.ts";
import type { IssuerMode } from "../federation/issuer-server.ts";
import { call, expectStatus, platformRoot, unique } from "../helpers.ts";
import { signingKey, type SigningKeyPair } from "./federation-helpers.ts";
import { addPublicKey, assertionGrant, clientAssertion, expectOAuthError, expectProblemCode, ISSUER, keyPair } from "./oauth-helpers.ts";
import { auditOf, freshOrg, viewerAccount } from "./token-helpers.ts";

/**
 * An account's jwksUri: its private_key_jwt keys are fetched from its own JWKS (served here by the
 * loopback issuer server of test/federation/, under a name of this file's own), with federation's
 * fetch rules: timeout, size limit, cache, refresh on an unknown kid at most once a minute.
 */

let root: { id: string; token: string };
let o: Awaited<ReturnType<typeof freshOrg>>;
beforeAll(async () => {
  root = await platformRoot();
  o = await freshOrg(root.token);
});

const sas = (org: string) => `/api/v1/orgs/${org}/service-accounts`;
const jwksUriPath = (org: string, sa: string) => `${sas(org)}/${sa}/jwks-uri`;

/** A JWKS of this file on the loopback server: its URL, what it serves, how often it was fetched. */
async function servedJwks(keys: SigningKeyPair[]) {
  const name = unique("jwks-uri");
  const control = async (patch: Record<string, unknown> = {}) => {
    const res = await fetch(`${env.TEST_ISSUER_BASE}/__control/${name}`, { method: "POST", body: JSON.stringify(patch) });
    return (await res.json()) as { hits: { jwks: number } };
  };
  await control({ keys: keys.map((k) => k.publicJwk), mode: "ok", cacheControl: null, resetHits: true });
  return {
    url: `${env.TEST_ISSUER_BASE}/${name}/jwks`,
    serve: async (next: SigningKeyPair[]) => void (await control({ keys: next.map((k) => k.publicJwk) })),
    serveRaw: async (keys: object[]) => void (await control({ keys })),
    mode: async (mode: IssuerMode) => void (await control({ mode })),
    hits: async () => (await control()).hits.jwks,
    resetHits: async () => void (await control({ resetHits: true })),
  };
}

/** An org account (viewer) with only a jwksUri: no key, no token. */
async function jwksAccount(url: string) {
  const res = await call("POST", sas(o.org.id), { token: o.adminToken, body: { name: unique("wl"), roles: [{ role: "viewer" }], jwksUri: url } });
  expectStatus(res, 201);
  return res.json as { id: string; jwksUri: string | null };
}

const grant = async (key: SigningKeyPair, clientId: string, kid: string | undefined = key.kid) =>
  assertionGrant(await clientAssertion(key.privateKey, clientId, { kid, alg: key.alg }));

describe("a client whose keys are only in its own JWKS", () => {
  it("gets a JWT with a key served at its jwksUri; the set is fetched once and then cached", async () => {
    const k1 = await signingKey("ES256");
    const jwks = await servedJwks([k1]);
    const sa = await jwksAccount(jwks.url);
    expect(sa.jwksUri).toBe(jwks.url);
    const res = await grant(k1, sa.id);
    expectStatus(res, 200);
    expect(jose.decodeJwt(res.json.access_token).sub).toBe(sa.id);
    expectStatus(await grant(k1, sa.id), 200);
    expect(await jwks.hits()).toBe(1);
    // Without a kid the set's keys are tried too.
    expectStatus(await grant(k1, sa.id, undefined), 200);
  });

  it("RS256 and EdDSA keys in the set work as well", async () => {
    const rsa = await signingKey("RS256");
    const ed = await signingKey("EdDSA");
    const jwks = await servedJwks([rsa, ed]);
    const sa = await jwksAccount(jwks.url);
    expectStatus(await grant(rsa, sa.id), 200);
    expectStatus(await grant(ed, sa.id), 200);
  });

  it("registered keys come first: a registered key authenticates without fetching the JWKS", async () => {
    const served = await signingKey();
    const jwks = await servedJwks([served]);
    const sa = await jwksAccount(jwks.url);
    const { publicKey, privateKey } = await keyPair("ES256");
    const added = await addPublicKey(o.adminToken, o.org.id, sa.id, { publicKey: await jose.exportJWK(publicKey), kid: "registered" });
    expectStatus(added, 201);
    expectStatus(await assertionGrant(await clientAssertion(privateKey, sa.id, { kid: "registered" })), 200);
    expect(await jwks.hits()).toBe(0);
    expectStatus(await grant(served, sa.id), 200);
    expect(await jwks.hits()).toBe(1);
  });

  it("a key in nobody's set, a key of another client's set, a tampered assertion: invalid_client", async () => {
    const mine = await signingKey();
    const theirs = await signingKey();
    const sa = await jwksAccount((await servedJwks([mine])).url);
    const other = await jwksAccount((await servedJwks([theirs])).url);
    expectOAuthError(await grant(theirs, sa.id), 401, "invalid_client");
    expectOAuthError(await grant(await signingKey(), sa.id), 401, "invalid_client");
    const good = await clientAssertion(mine.privateKey, sa.id, { kid: mine.kid });
    const [h, , s] = good.split(".");
    const forged = `${h}.${jose.base64url.encode(JSON.stringify({ ...jose.decodeJwt(good), sub: other.id, iss: other.id }))}.${s}`;
    expectOAuthError(await assertionGrant(forged), 401, "invalid_client");
    const unsigned = `${jose.base64url.encode(JSON.stringify({ alg: "none", kid: mine.kid }))}.${good.split(".")[1]}.`;
    expectOAuthError(await assertionGrant(unsigned), 401, "invalid_client");
  });

  it("a private key or an HMAC key in the set is never used", async () => {
    const k = await signingKey();
    const jwks = await servedJwks([]);
    const secret = new Uint8Array(32).fill(7);
    const hmac = { kty: "oct", kid: "hs", k: jose.base64url.encode(secret), alg: "HS256" };
    const { privateKey: priv } = await jose.generateKeyPair("ES256", { extractable: true });
    const withD = { ...(await jose.exportJWK(priv)), kid: "with-d", alg: "ES256" };
    await jwks.serveRaw([hmac, withD, k.publicJwk]);
    const sa = await jwksAccount(jwks.url);
    const hs = await new jose.SignJWT({}).setProtectedHeader({ alg: "HS256", kid: "hs" }).setIssuer(sa.id).setSubject(sa.id).setAudience(ISSUER).setIssuedAt().setExpirationTime("1m").setJti(crypto.randomUUID()).sign(secret);
    expectOAuthError(await assertionGrant(hs), 401, "invalid_client");
    // The private JWK's public half does not verify anything either: the key with `d` was dropped.
    expectOAuthError(await assertionGrant(await clientAssertion(priv, sa.id, { kid: "with-d" })), 401, "invalid_client");
    expectStatus(await grant(k, sa.id), 200);
  });
});

describe("rotation and the refresh limit", () => {
  it("a rotated-in kid within the minute after a fetch is refused without fetching (at most one refresh a minute)", async () => {
    const k1 = await signingKey();
    const jwks = await servedJwks([k1]);
    const sa = await jwksAccount(jwks.url);
    expectStatus(await grant(k1, sa.id), 200);
    const k2 = await signingKey();
    await jwks.serve([k1, k2]);
    await jwks.resetHits();
    expectOAuthError(await grant(k2, sa.id), 401, "invalid_client");
    expectOAuthError(await grant(await signingKey(), sa.id), 401, "invalid_client");
    expect(await jwks.hits()).toBe(0);
  });

  it("after the minute, an unknown kid refreshes the set once and the new key is found; a second unknown kid fetches nothing (service test, clock moved)", async () => {
    const k1 = await signingKey();
    const jwks = await servedJwks([k1]);
    const t0 = Date.now();
    const at = (ms: number) => ({ ...createCtx(env, { actorId: "t", requestId: null, ip: null, userAgent: null }), now: () => t0 + ms });
    await clientJwks(at(0), jwks.url, k1.kid);
    const k2 = await signingKey();
    await jwks.serve([k1, k2]);
    await jwks.resetHits();
    const soon = await clientJwks(at(REFRESH_EVERY_MS - 1000), jwks.url, k2.kid);
    expect(soon.jwks.keys.map((k) => k.kid)).toEqual([k1.kid]);
    expect(await jwks.hits()).toBe(0);
    const later = await clientJwks(at(REFRESH_EVERY_MS + 1000), jwks.url, k2.kid);
    expect(later.jwks.keys.map((k) => k.kid).sort()).toEqual([k1.kid, k2.kid].sort());
    expect(await jwks.hits()).toBe(1);
    await clientJwks(at(REFRESH_EVERY_MS + 2000), jwks.url, k2.kid);
    await clientJwks(at(REFRESH_EVERY_MS + 5000), jwks.url, "nobody-has-it");
    expect(await jwks.hits(), "at most one refresh a minute").toBe(1);
  });
});

describe("fetch failures: invalid_client, never a 500", () => {
  for (const [mode, why] of [
    ["down", "503"],
    ["big-jwks", "over 64 KiB"],
    ["html", "not JSON"],
    ["redirect-jwks", "a redirect"],
  ] as const) {
    it(`a JWKS that answers ${why}: 401 invalid_client`, async () => {
      const k = await signingKey();
      const jwks = await servedJwks([k]);
      await jwks.mode(mode);
      const sa = await jwksAccount(jwks.url);
      const res = await grant(k, sa.id);
      expectOAuthError(res, 401, "invalid_client");
    });
  }

  it("a JWKS that never answers in time: 401 invalid_client after the timeout", async () => {
    const k = await signingKey();
    const jwks = await servedJwks([k]);
    await jwks.mode("slow");
    const sa = await jwksAccount(jwks.url);
    const started = Date.now();
    expectOAuthError(await grant(k, sa.id), 401, "invalid_client");
    expect(Date.now() - started).toBeLessThan(4900);
  }, 15_000);

  it("an unreachable host: 401 invalid_client", async () => {
    const k = await signingKey();
    const sa = await jwksAccount("http://127.0.0.1:9/jwks");
    expectOAuthError(await grant(k, sa.id), 401, "invalid_client");
  });
});

describe("setting jwksUri", () => {
  it("refuses what is not a public https URL (422 jwks_uri_not_allowed) at create and on PUT; nothing is created or changed", async () => {
    const sa = await viewerAccount(o.adminToken, o.org.id);
    for (const bad of ["http://jwks.example.com/keys", "https://10.0.0.1/keys", "https://169.254.169.254/latest", "https://metadata.internal/keys", "ftp://example.com/k", "not a url", `https://example.com/${"a".repeat(2048)}`, "https://user:pw@example.com/k", `${ISSUER}/.well-known/jwks.json`]) {
      expectProblemCode(await call("PUT", jwksUriPath(o.org.id, sa.id), { token: o.adminToken, body: { jwksUri: bad } }), 422, "jwks_uri_not_allowed");
      const name = unique("bad");
      expectProblemCode(await call("POST", sas(o.org.id), { token: o.adminToken, body: { name, jwksUri: bad } }), 422, "jwks_uri_not_allowed");
      const list = await call("GET", `${sas(o.org.id)}?q=${name}`, { token: o.adminToken });
      expect(list.json.items, bad).toEqual([]);
    }
    const read = await call("GET", `${sas(o.org.id)}/${sa.id}`, { token: o.adminToken });
    expect(read.json.jwksUri).toBeNull();
    expectProblemCode(await call("PUT", jwksUriPath(o.org.id, sa.id), { token: o.adminToken, body: { jwksUri: "https://ok.example.com/k", extra: 1 } }), 400, "validation_failed");
    expectProblemCode(await call("PUT", jwksUriPath(o.org.id, sa.id), { token: o.adminToken, body: {} }), 400, "validation_failed");
  });

  it("PUT sets it (audited, the account then authenticates by its JWKS), null removes it (refused again)", async () => {
    const k = await signingKey();
    const jwks = await servedJwks([k]);
    const sa = await viewerAccount(o.adminToken, o.org.id);
    expectOAuthError(await grant(k, sa.id), 401, "invalid_client");
    const set = await call("PUT", jwksUriPath(o.org.id, sa.id), { token: o.adminToken, body: { jwksUri: jwks.url } });
    expectStatus(set, 200);
    expect(set.json.jwksUri).toBe(jwks.url);
    expectStatus(await grant(k, sa.id), 200);
    const cleared = await call("PUT", jwksUriPath(o.org.id, sa.id), { token: o.adminToken, body: { jwksUri: null } });
    expectStatus(cleared, 200);
    expect(cleared.json.jwksUri).toBeNull();
    expectOAuthError(await grant(k, sa.id), 401, "invalid_client");
    const updates = (await auditOf(sa.id)).filter((e) => e.action === "service_account.updated").map((e) => JSON.parse(e.details).fields);
    expect(updates).toEqual([["jwksUri"], ["jwksUri"]]);
  });

  it("a viewer cannot set it (403); a disabled account's JWKS authenticates nothing", async () => {
    const k = await signingKey();
    const jwks = await servedJwks([k]);
    const sa = await jwksAccount(jwks.url);
    const viewer = await call("POST", sas(o.org.id), { token: o.adminToken, body: { name: unique("v"), roles: [{ role: "viewer" }], issueToken: true } });
    expectStatus(viewer, 201);
    expectProblemCode(await call("PUT", jwksUriPath(o.org.id, sa.id), { token: viewer.json.token.token, body: { jwksUri: null } }), 403, "permission_denied");
    expectStatus(await call("PATCH", `${sas(o.org.id)}/${sa.id}`, { token: o.adminToken, body: { status: "disabled" } }), 200);
    expectOAuthError(await grant(k, sa.id), 401, "invalid_client");
  });

  it("a platform client may be private_key_jwt with only a jwksUri; client_secret_basic with one is refused", async () => {
    const k = await signingKey();
    const jwks = await servedJwks([k]);
    const created = await call("POST", "/api/service-accounts", { token: root.token, body: { name: unique("pc"), permissions: [], tokenEndpointAuthMethod: "private_key_jwt", jwksUri: jwks.url } });
    expectStatus(created, 201);
    expect(created.json.clientSecret).toBeUndefined();
    expectStatus(await grant(k, created.json.clientId), 200);
    const basic = await call("POST", "/api/service-accounts", { token: root.token, body: { name: unique("pc"), permissions: [], tokenEndpointAuthMethod: "client_secret_basic", jwksUri: jwks.url } });
    expectProblemCode(basic, 400, "validation_failed");
    const bad = await call("POST", "/api/service-accounts", { token: root.token, body: { name: unique("pc"), permissions: [], tokenEndpointAuthMethod: "private_key_jwt", jwksUri: "http://jwks.example.com/k" } });
    expectProblemCode(bad, 422, "jwks_uri_not_allowed");
  });
});
