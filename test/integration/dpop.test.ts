import * as jose from "jose";
import * as oauth from "oauth4webapi";
import { beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, platformRoot } from "../helpers.ts";
import { consolePost, sessionCookieOf } from "./console-helpers.ts";
import { basic, expectOAuthError, ISSUER, newClient, postForm, type Client, ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE, JWT_TOKEN_TYPE } from "./oauth-helpers.ts";
import {
  clientOptions,
  cnfOf,
  discover,
  dpopClientCredentials,
  dpopGet,
  expectDpopChallenge,
  proof,
  proofKeys,
  thumbprintOf,
  TOKEN_URL,
  viaWorker,
  viaWorkerWith,
  type ProofAlg,
} from "./dpop-helpers.ts";

/** RFC 9449 DPoP: /oauth/token binds JWTs to the proof's key; the management API takes them only with a proof. */

let root: { id: string; token: string };
let viewer: Client;
let as: oauth.AuthorizationServer;
beforeAll(async () => {
  root = await platformRoot();
  viewer = await newClient(root.token, { roles: [{ role: "viewer" }] });
  as = await discover();
});

const orgPath = () => `/api/v1/orgs/${viewer.org.id}`;

/** client_credentials for the viewer with a hand-made DPoP header. */
const grantWithProof = (dpop: string | string[], client: Client = viewer, extra: Record<string, string> = {}) =>
  postForm("/oauth/token", { grant_type: "client_credentials", ...extra }, { basic: [client.account.id, client.token], headers: { dpop: Array.isArray(dpop) ? dpop.join(", ") : dpop } });

async function boundToken(keys: CryptoKeyPair, client: Client = viewer): Promise<string> {
  const res = await grantWithProof(await proof(keys), client);
  expectStatus(res, 200);
  expect(res.json.token_type).toBe("DPoP");
  return res.json.access_token as string;
}

/** GET on the management API with Authorization: DPoP and a hand-made proof. */
const getWithProof = (token: string, dpop: string | undefined, path = orgPath(), scheme = "DPoP") =>
  call("GET", path, { headers: { authorization: `${scheme} ${token}`, ...(dpop !== undefined ? { dpop } : {}) } });

describe("metadata", () => {
  it("advertises dpop_signing_alg_values_supported (asymmetric algorithms only)", () => {
    expect(as.dpop_signing_alg_values_supported).toEqual(["ES256", "EdDSA", "Ed25519", "RS256", "PS256"]);
  });
});

describe("the token endpoint with oauth4webapi", () => {
  it.each(["ES256", "EdDSA", "RS256", "PS256"] as ProofAlg[])("client_credentials with a %s proof: token_type DPoP, cnf.jkt the key's RFC 7638 thumbprint", async (alg) => {
    const keys = await proofKeys(alg);
    const DPoP = oauth.DPoP({}, keys);
    const tokens = await dpopClientCredentials(as, viewer.account.id, viewer.token, DPoP);
    expect(tokens.token_type).toBe("dpop");
    expect(cnfOf(tokens.access_token)).toEqual({ jkt: await thumbprintOf(keys) });
    expect(await DPoP.calculateThumbprint()).toBe(await thumbprintOf(keys));
    // The bound token works on the management API with oauth4webapi's proof (ath over the token).
    const res = await dpopGet(tokens.access_token, orgPath(), DPoP);
    expect(res.status, await res.clone().text()).toBe(200);
    expect((await res.json() as { id: string }).id).toBe(viewer.org.id);
  });

  it("without a DPoP header the grant is unchanged: a Bearer token without cnf", async () => {
    const res = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [viewer.account.id, viewer.token] });
    expectStatus(res, 200);
    expect(res.json.token_type).toBe("Bearer");
    expect(cnfOf(res.json.access_token)).toBeUndefined();
  });

  it("introspection (oauth4webapi) returns cnf and token_type DPoP", async () => {
    const keys = await proofKeys();
    const token = await boundToken(keys);
    const client: oauth.Client = { client_id: viewer.account.id };
    const res = await oauth.introspectionRequest(as, client, oauth.ClientSecretBasic(viewer.token), token, clientOptions(viaWorker));
    const result = await oauth.processIntrospectionResponse(as, client, res);
    expect(result.active).toBe(true);
    expect(result.cnf).toEqual({ jkt: await thumbprintOf(keys) });
    expect(result.token_type).toBe("DPoP");
  });
});

describe("proofs refused at the token endpoint (invalid_dpop_proof, nothing issued)", () => {
  const now = () => Math.floor(Date.now() / 1000);
  const cases: [string, (keys: CryptoKeyPair) => Promise<string>][] = [
    ["a wrong htm", (k) => proof(k, { htm: "GET" })],
    ["an htu of another endpoint", (k) => proof(k, { htu: `${ISSUER}/oauth/introspect` })],
    ["an htu of another host", (k) => proof(k, { htu: "https://evil.example/oauth/token" })],
    ["an htu that is not a URL", (k) => proof(k, { htu: "/oauth/token" })],
    ["a stale iat", (k) => proof(k, { iat: now() - 301 - 30 })],
    ["an iat in the future", (k) => proof(k, { iat: now() + 120 })],
    ["no jti", (k) => proof(k, { jti: null })],
    ["typ JWT", (k) => proof(k, { typ: "JWT" })],
    ["a private key in the header's jwk", async (k) => proof(k, { jwk: await jose.exportJWK(k.privateKey) })],
    ["a jwk that is not the signing key", async (k) => proof(k, { jwk: await jose.exportJWK((await proofKeys()).publicKey) })],
    ["a symmetric alg", async () => new jose.SignJWT({ htm: "POST", htu: TOKEN_URL, iat: now(), jti: "x" }).setProtectedHeader({ alg: "HS256", typ: "dpop+jwt", jwk: { kty: "oct", k: "c2VjcmV0" } } as never).sign(new TextEncoder().encode("secret-secret-secret-secret-secret"))],
    ["alg none", async (k) => { const p = await proof(k); const [, body] = p.split("."); return `${jose.base64url.encode(JSON.stringify({ alg: "none", typ: "dpop+jwt", jwk: await jose.exportJWK(k.publicKey) }))}.${body}.`; }],
    ["a tampered payload", async (k) => { const [h, , s] = (await proof(k)).split("."); return `${h}.${jose.base64url.encode(JSON.stringify({ htm: "POST", htu: TOKEN_URL, iat: now(), jti: "forged" }))}.${s}`; }],
    ["not a JWT", async () => "not-a-jwt"],
  ];
  it.each(cases)("%s", async (_name, make) => {
    const res = await grantWithProof(await make(await proofKeys()));
    expectOAuthError(res, 400, "invalid_dpop_proof");
  });

  it("two DPoP headers", async () => {
    const keys = await proofKeys();
    expectOAuthError(await grantWithProof([await proof(keys), await proof(keys)]), 400, "invalid_dpop_proof");
  });

  it("a replayed proof: the same jti of the same key is accepted once", async () => {
    const keys = await proofKeys();
    const dpop = await proof(keys);
    expectStatus(await grantWithProof(dpop), 200);
    expectOAuthError(await grantWithProof(dpop), 400, "invalid_dpop_proof");
  });

  it("the same proof in 20 parallel requests: exactly one is accepted (the replay check is atomic)", async () => {
    const keys = await proofKeys();
    const dpop = await proof(keys);
    const results = await Promise.all(Array.from({ length: 20 }, () => grantWithProof(dpop)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const res of results.filter((r) => r.status !== 200)) expectOAuthError(res, 400, "invalid_dpop_proof");
  });

  it("20 different proofs in parallel: all accepted, and each refused when replayed", async () => {
    const keys = await proofKeys();
    const proofs = await Promise.all(Array.from({ length: 20 }, () => proof(keys)));
    for (const res of await Promise.all(proofs.map((p) => grantWithProof(p)))) expectStatus(res, 200);
    for (const res of await Promise.all(proofs.map((p) => grantWithProof(p)))) expectOAuthError(res, 400, "invalid_dpop_proof");
  });

  it("the htu normalisation: scheme and host case and the default port do not matter; the query is ignored", async () => {
    const keys = await proofKeys();
    const url = new URL(TOKEN_URL);
    const variant = `HTTP://${url.hostname.toUpperCase()}:${url.port}${url.pathname}?x=1`;
    expectStatus(await grantWithProof(await proof(keys, { htu: variant })), 200);
  });
});

describe("a bound JWT on the management API", () => {
  it("as a Bearer token: 401 with a DPoP challenge (invalid_token), code dpop_required", async () => {
    const token = await boundToken(await proofKeys());
    const res = await call("GET", orgPath(), { token });
    expectDpopChallenge(res, "invalid_token");
    expect(res.json.code).toBe("dpop_required");
  });

  it("as DPoP with a valid proof: 200; the same proof again: refused (replay)", async () => {
    const keys = await proofKeys();
    const token = await boundToken(keys);
    const dpop = await proof(keys, { htm: "GET", htu: ISSUER + orgPath(), accessToken: token });
    expectStatus(await getWithProof(token, dpop), 200);
    const again = await getWithProof(token, dpop);
    expectDpopChallenge(again, "invalid_dpop_proof");
  });

  it("as DPoP without a proof: 401 dpop_required", async () => {
    const token = await boundToken(await proofKeys());
    const res = await getWithProof(token, undefined);
    expect(res.status, res.text).toBe(401);
    expect(res.json.code).toBe("dpop_required");
  });

  it("a proof whose ath is over another token: refused", async () => {
    const keys = await proofKeys();
    const token = await boundToken(keys);
    const res = await getWithProof(token, await proof(keys, { htm: "GET", htu: ISSUER + orgPath(), accessToken: `${token}x` }));
    expectDpopChallenge(res, "invalid_dpop_proof");
    expect(res.json.code).toBe("invalid_dpop_proof");
  });

  it("a proof without ath: refused", async () => {
    const keys = await proofKeys();
    const token = await boundToken(keys);
    expectDpopChallenge(await getWithProof(token, await proof(keys, { htm: "GET", htu: ISSUER + orgPath() })), "invalid_dpop_proof");
  });

  it("a valid proof of another key than cnf.jkt: refused (a stolen token is useless)", async () => {
    const token = await boundToken(await proofKeys());
    const thief = await proofKeys();
    const res = await getWithProof(token, await proof(thief, { htm: "GET", htu: ISSUER + orgPath(), accessToken: token }));
    expectDpopChallenge(res, "invalid_dpop_proof");
  });

  it("a proof for another method or URL: refused", async () => {
    const keys = await proofKeys();
    const token = await boundToken(keys);
    expectDpopChallenge(await getWithProof(token, await proof(keys, { htm: "POST", htu: ISSUER + orgPath(), accessToken: token })), "invalid_dpop_proof");
    expectDpopChallenge(await getWithProof(token, await proof(keys, { htm: "GET", htu: `${ISSUER}/api/v1/orgs`, accessToken: token })), "invalid_dpop_proof");
  });

  it("the DPoP scheme with an unbound token (an access token, a Bearer JWT): refused", async () => {
    const keys = await proofKeys();
    const plain = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [viewer.account.id, viewer.token] });
    for (const token of [viewer.token, plain.json.access_token as string]) {
      const res = await getWithProof(token, await proof(keys, { htm: "GET", htu: ISSUER + orgPath(), accessToken: token }));
      expectDpopChallenge(res, "invalid_dpop_proof");
    }
    // As Bearer they still work.
    expectStatus(await call("GET", orgPath(), { token: viewer.token }), 200);
  });

  it("POST /api/v1/auth/authorize with a bound JWT: the JWT it derives is bound to the same key", async () => {
    const keys = await proofKeys();
    const token = await boundToken(keys);
    const url = `${ISSUER}/api/v1/auth/authorize`;
    const res = await call("POST", "/api/v1/auth/authorize", {
      headers: { authorization: `DPoP ${token}`, dpop: await proof(keys, { htm: "POST", htu: url, accessToken: token }) },
      body: { org: viewer.org.id },
    });
    expectStatus(res, 200);
    expect(cnfOf(res.json.jwt)).toEqual({ jkt: await thumbprintOf(keys) });
    // As Bearer, the derived JWT is refused like its parent.
    expect((await call("GET", orgPath(), { token: res.json.jwt })).json.code).toBe("dpop_required");
  });

  it("the console's sign-in (no proof possible) refuses a bound JWT: no session, no 500", async () => {
    const token = await boundToken(await proofKeys());
    const res = await consolePost("/console/login", null, { token });
    expect(res.status, res.text.slice(0, 300)).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(sessionCookieOf(res)).toBeNull();
  });

  it("an unbound access token as Bearer is unaffected by a stray DPoP header", async () => {
    expectStatus(await call("GET", orgPath(), { token: viewer.token, headers: { dpop: "garbage" } }), 200);
  });
});

describe("token exchange (RFC 8693) of a bound JWT", () => {
  const exchangeBody = (subject: string) => ({ grant_type: TOKEN_EXCHANGE, subject_token: subject, subject_token_type: JWT_TOKEN_TYPE });

  it("with a proof of the same key: a new JWT bound to that key", async () => {
    const keys = await proofKeys();
    const token = await boundToken(keys);
    const res = await postForm("/oauth/token", exchangeBody(token), { headers: { dpop: await proof(keys) } });
    expectStatus(res, 200);
    expect(res.json.token_type).toBe("DPoP");
    expect(cnfOf(res.json.access_token)).toEqual({ jkt: await thumbprintOf(keys) });
  });

  it("without a proof, or with a proof of another key: refused", async () => {
    const keys = await proofKeys();
    const token = await boundToken(keys);
    expectOAuthError(await postForm("/oauth/token", exchangeBody(token)), 400, "invalid_dpop_proof");
    expectOAuthError(await postForm("/oauth/token", exchangeBody(token), { headers: { dpop: await proof(await proofKeys()) } }), 400, "invalid_dpop_proof");
  });

  it("an access token exchanged with a proof: bound", async () => {
    const keys = await proofKeys();
    const res = await postForm("/oauth/token", { grant_type: TOKEN_EXCHANGE, subject_token: viewer.token, subject_token_type: ACCESS_TOKEN_TYPE }, { headers: { dpop: await proof(keys) } });
    expectStatus(res, 200);
    expect(cnfOf(res.json.access_token)).toEqual({ jkt: await thumbprintOf(keys) });
  });
});

describe("requireDpop", () => {
  it("an account that requires DPoP gets no token without a proof, and a bound one with it", async () => {
    const strict = await newClient(root.token, { roles: [{ role: "viewer" }], requireDpop: true });
    expect(strict.account.requireDpop).toBe(true);
    expectOAuthError(await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [strict.account.id, strict.token] }), 400, "invalid_dpop_proof");
    // The JSON exchange endpoint takes no proof: it issues such an account nothing.
    const json = await call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: strict.token } });
    expect(json.status, json.text).toBe(401);
    expect(json.json.code).toBe("dpop_required");
    // With a proof (htu: the exchange endpoint), the JSON exchange binds the JWT too.
    const keys = await proofKeys();
    const bound = await call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: strict.token }, headers: { dpop: await proof(keys, { htu: `${ISSUER}/api/auth/access-tokens/jwt` }) } });
    expectStatus(bound, 200);
    expect(cnfOf(bound.json.jwt)).toEqual({ jkt: await thumbprintOf(keys) });
    const wrongHtu = await call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: strict.token }, headers: { dpop: await proof(keys) } });
    expectDpopChallenge(wrongHtu, "invalid_dpop_proof");
    const DPoP = oauth.DPoP({}, await proofKeys());
    const tokens = await dpopClientCredentials(as, strict.account.id, strict.token, DPoP);
    expect(tokens.token_type).toBe("dpop");
    expect(cnfOf(tokens.access_token)?.jkt).toBe(await DPoP.calculateThumbprint());
  });

  it("PATCH turns it on and off (GET shows it); on, the next grant without a proof is refused", async () => {
    const client = await newClient(root.token, { roles: [{ role: "viewer" }] });
    const path = `/api/v1/orgs/${client.org.id}/service-accounts/${client.account.id}`;
    expect(client.account.requireDpop).toBe(false);
    const on = await call("PATCH", path, { token: root.token, body: { requireDpop: true } });
    expectStatus(on, 200);
    expect(on.json.requireDpop).toBe(true);
    expect((await call("GET", path, { token: root.token })).json.requireDpop).toBe(true);
    expectOAuthError(await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [client.account.id, client.token] }), 400, "invalid_dpop_proof");
    expectStatus(await call("PATCH", path, { token: root.token, body: { requireDpop: false } }), 200);
    expectStatus(await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [client.account.id, client.token] }), 200);
  });

  it("the org policy's requireDpop is the default of accounts created without one", async () => {
    const org = await call("POST", "/api/v1/orgs", { token: root.token, body: { slug: `dpop-${crypto.randomUUID().slice(0, 8)}`, name: "DPoP org", policy: { requireDpop: true } } });
    expectStatus(org, 201);
    expect(org.json.policy.requireDpop).toBe(true);
    const inherited = await newClient(root.token, { roles: [{ role: "viewer" }] }, org.json.id);
    expect(inherited.account.requireDpop).toBe(true);
    expectOAuthError(await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [inherited.account.id, inherited.token] }), 400, "invalid_dpop_proof");
    const optedOut = await newClient(root.token, { roles: [{ role: "viewer" }], requireDpop: false }, org.json.id);
    expect(optedOut.account.requireDpop).toBe(false);
    expectStatus(await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [optedOut.account.id, optedOut.token] }), 200);
  });

  it("requireDpop must be a boolean", async () => {
    const res = await call("POST", `/api/v1/orgs/${viewer.org.id}/service-accounts`, { token: root.token, body: { name: "dpop-bad", requireDpop: "yes" } });
    expectStatus(res, 400);
  });
});

describe("server nonces (DPOP_REQUIRE_NONCE=true)", () => {
  const withNonces = viaWorkerWith({ DPOP_REQUIRE_NONCE: "true" });
  const tokenRequest = (dpop: string) =>
    withNonces(TOKEN_URL, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(viewer.account.id, viewer.token), dpop }, body: "grant_type=client_credentials" });

  it("a proof without a nonce: 400 use_dpop_nonce with a DPoP-Nonce header; with it: a bound token and a next nonce", async () => {
    const keys = await proofKeys();
    const first = await tokenRequest(await proof(keys));
    expect(first.status).toBe(400);
    expect(((await first.json()) as { error: string }).error).toBe("use_dpop_nonce");
    const nonce = first.headers.get("dpop-nonce");
    expect(nonce).toBeTruthy();
    const second = await tokenRequest(await proof(keys, { nonce: nonce! }));
    expect(second.status, await second.clone().text()).toBe(200);
    expect(second.headers.get("dpop-nonce")).toBeTruthy();
  });

  it("oauth4webapi's nonce retry succeeds (the handle keeps the server's nonce)", async () => {
    const nonceAs = await discover(withNonces);
    const DPoP = oauth.DPoP({}, await proofKeys());
    const tokens = await dpopClientCredentials(nonceAs, viewer.account.id, viewer.token, DPoP, withNonces);
    expect(tokens.token_type).toBe("dpop");
  });

  it("a forged or malformed nonce: use_dpop_nonce again", async () => {
    const keys = await proofKeys();
    for (const nonce of ["forged", "0.AAAAAAAAAAAAAAAAAAAAAA", "x".repeat(100)]) {
      const res = await tokenRequest(await proof(keys, { nonce }));
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe("use_dpop_nonce");
    }
  });

  it("the management API asks for the nonce too (401, WWW-Authenticate DPoP error=use_dpop_nonce)", async () => {
    const keys = await proofKeys();
    const first = await tokenRequest(await proof(keys));
    const nonce = first.headers.get("dpop-nonce")!;
    const token = ((await (await tokenRequest(await proof(keys, { nonce }))).json()) as { access_token: string }).access_token;
    const url = ISSUER + orgPath();
    const without = await withNonces(url, { headers: { authorization: `DPoP ${token}`, dpop: await proof(keys, { htm: "GET", htu: url, accessToken: token }) } });
    expectDpopChallenge({ status: without.status, headers: without.headers, text: await without.text() }, "use_dpop_nonce");
    expect(without.headers.get("dpop-nonce")).toBeTruthy();
    const withIt = await withNonces(url, { headers: { authorization: `DPoP ${token}`, dpop: await proof(keys, { htm: "GET", htu: url, accessToken: token, nonce: without.headers.get("dpop-nonce")! }) } });
    expect(withIt.status, await withIt.text()).toBe(200);
  });

  it("off by default: a proof without a nonce is accepted", async () => {
    expectStatus(await grantWithProof(await proof(await proofKeys())), 200);
  });
});
