import * as jose from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import {
  addPublicKey,
  assertionGrant,
  clientAssertion,
  expectOAuthError,
  expectProblemCode,
  expectUnauthorized,
  keyPair,
  newClient,
  nowS,
  postForm,
  type Res,
} from "./oauth-helpers.ts";

/** Public keys of service accounts (for private_key_jwt) and platform-level OAuth clients. */

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

const keysPath = (org: string, sa: string) => `/api/v1/orgs/${org}/service-accounts/${sa}/keys`;
const KEY_FIELDS = ["accountId", "alg", "createdAt", "expiresAt", "fingerprint", "id", "jwk", "kid", "name", "status"];

/** A key-authenticated token request for `clientId`: the status only matters to the caller. */
async function tryKey(privateKey: CryptoKey, clientId: string, kid: string | undefined, alg: "ES256" | "RS256" | "EdDSA" = "ES256") {
  return assertionGrant(await clientAssertion(privateKey, clientId, { kid, alg }));
}

function expectKey(res: Res, alg: string) {
  expectStatus(res, 201);
  const key = res.json;
  expect(Object.keys(key).sort(), res.text).toEqual(KEY_FIELDS);
  expect(key.id, res.text).toMatch(/^key_/);
  expect(key.alg, res.text).toBe(alg);
  expect(key.kid, res.text).toBeTypeOf("string");
  expect(key.fingerprint, res.text).toMatch(/^[A-Za-z0-9_-]{43}$/);
  for (const member of ["d", "p", "q", "dp", "dq", "qi", "k"]) expect(key.jwk, res.text).not.toHaveProperty(member);
  return key;
}

describe("public keys: register, list, delete", () => {
  it("registers a PEM SPKI key: 201 with kid = fingerprint = the RFC 7638 thumbprint", async () => {
    const c = await newClient(root.token);
    const { publicKey } = await keyPair("ES256");
    const res = await addPublicKey(root.token, c.org.id, c.account.id, { publicKey: await jose.exportSPKI(publicKey), name: "laptop" });
    const key = expectKey(res, "ES256");
    const thumbprint = await jose.calculateJwkThumbprint(await jose.exportJWK(publicKey), "sha256");
    expect(key.fingerprint, res.text).toBe(thumbprint);
    expect(key.kid, res.text).toBe(thumbprint);
    expect(key.accountId).toBe(c.account.id);
    expect(key.name).toBe("laptop");
  });

  it("registers a JWK (keeping its kid) and an explicit kid", async () => {
    const c = await newClient(root.token);
    const a = await keyPair("ES256");
    const withKid = await addPublicKey(root.token, c.org.id, c.account.id, { publicKey: { ...(await jose.exportJWK(a.publicKey)), kid: "ci-2026" } });
    expect(expectKey(withKid, "ES256").kid).toBe("ci-2026");
    const b = await keyPair("EdDSA");
    const explicit = await addPublicKey(root.token, c.org.id, c.account.id, { publicKey: await jose.exportJWK(b.publicKey), kid: "edge-1" });
    expect(expectKey(explicit, "EdDSA").kid).toBe("edge-1");
    const r = await keyPair("RS256");
    expectKey(await addPublicKey(root.token, c.org.id, c.account.id, { publicKey: await jose.exportJWK(r.publicKey) }), "RS256");
  });

  it("registers an RS256 PEM SPKI key (alg inferred)", async () => {
    const c = await newClient(root.token);
    const { publicKey, privateKey } = await keyPair("RS256");
    const res = await addPublicKey(root.token, c.org.id, c.account.id, { publicKey: await jose.exportSPKI(publicKey) });
    const key = expectKey(res, "RS256");
    expectStatus(await tryKey(privateKey, c.account.id, key.kid, "RS256"), 200);
  });

  it("lists the keys, and a deleted key no longer authenticates (401)", async () => {
    const c = await newClient(root.token);
    const one = await keyPair("ES256");
    const two = await keyPair("ES256");
    const k1 = expectKey(await addPublicKey(root.token, c.org.id, c.account.id, { publicKey: await jose.exportSPKI(one.publicKey) }), "ES256");
    const k2 = expectKey(await addPublicKey(root.token, c.org.id, c.account.id, { publicKey: await jose.exportSPKI(two.publicKey) }), "ES256");
    const list = await call("GET", keysPath(c.org.id, c.account.id), { token: root.token });
    expectStatus(list, 200);
    expect(list.json.items.map((k: { id: string }) => k.id).sort(), list.text).toEqual([k1.id, k2.id].sort());
    expect(list.json.nextCursor, list.text).toBeNull();
    expect(list.json.items[0], list.text).toEqual(expect.objectContaining({ kid: expect.any(String), fingerprint: expect.any(String) }));

    expectStatus(await tryKey(one.privateKey, c.account.id, k1.kid), 200);
    expectStatus(await call("DELETE", `${keysPath(c.org.id, c.account.id)}/${k1.id}`, { token: root.token }), 204);
    expectOAuthError(await tryKey(one.privateKey, c.account.id, k1.kid), 401, "invalid_client");
    expectOAuthError(await tryKey(one.privateKey, c.account.id, undefined), 401, "invalid_client");
    // The other key is unaffected.
    expectStatus(await tryKey(two.privateKey, c.account.id, k2.kid), 200);
    const after = await call("GET", keysPath(c.org.id, c.account.id), { token: root.token });
    expect(after.json.items.map((k: { id: string }) => k.id), after.text).toEqual([k2.id]);
    // Deleting again, or a key of another account, is a 404.
    expectProblemCode(await call("DELETE", `${keysPath(c.org.id, c.account.id)}/${k1.id}`, { token: root.token }), 404, "not_found");
    const other = await newClient(root.token, {}, c.org.id);
    expectProblemCode(await call("DELETE", `${keysPath(c.org.id, other.account.id)}/${k2.id}`, { token: root.token }), 404, "not_found");
  });

  it("a duplicate kid is 409 key_exists", async () => {
    const c = await newClient(root.token);
    const a = await keyPair("ES256");
    const b = await keyPair("ES256");
    const jwk = await jose.exportJWK(a.publicKey);
    expectStatus(await addPublicKey(root.token, c.org.id, c.account.id, { publicKey: jwk }), 201);
    expectProblemCode(await addPublicKey(root.token, c.org.id, c.account.id, { publicKey: jwk }), 409, "key_exists");
    expectStatus(await addPublicKey(root.token, c.org.id, c.account.id, { publicKey: await jose.exportSPKI(b.publicKey), kid: "same" }), 201);
    expectProblemCode(await addPublicKey(root.token, c.org.id, c.account.id, { publicKey: { ...(await jose.exportJWK(a.publicKey)), kid: "same" } }), 409, "key_exists");
  });
});

describe("public keys: refused input", () => {
  it("a private JWK (with d) is 400 invalid_key, EC and RSA alike; a symmetric key too", async () => {
    const c = await newClient(root.token);
    for (const alg of ["ES256", "RS256", "EdDSA"] as const) {
      const { privateKey } = await keyPair(alg);
      const res = await addPublicKey(root.token, c.org.id, c.account.id, { publicKey: await jose.exportJWK(privateKey) });
      expectProblemCode(res, 400, "invalid_key");
    }
    expectProblemCode(await addPublicKey(root.token, c.org.id, c.account.id, { publicKey: { kty: "oct", k: "c2VjcmV0LXNlY3JldC1zZWNyZXQ" } }), 400, "invalid_key");
    const list = await call("GET", keysPath(c.org.id, c.account.id), { token: root.token });
    expect(list.json.items, list.text).toEqual([]);
  });

  it.each([
    ["garbage", "not a key"],
    ["a PEM with garbage inside", "-----BEGIN PUBLIC KEY-----\nAAAAbm90IGEga2V5\n-----END PUBLIC KEY-----"],
    ["a private key PEM", "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----"],
    ["two PEM blocks", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"],
  ])("%s is 400 invalid_key", async (_, publicKey) => {
    const c = await newClient(root.token);
    expectProblemCode(await addPublicKey(root.token, c.org.id, c.account.id, { publicKey }), 400, "invalid_key");
  });

  it.each(["jwk", "pem"] as const)("an unsupported curve (P-384) as %s is 400 invalid_key", async (format) => {
    const c = await newClient(root.token);
    const { publicKey } = await jose.generateKeyPair("ES384", { extractable: true });
    const body = { publicKey: format === "jwk" ? await jose.exportJWK(publicKey) : await jose.exportSPKI(publicKey) };
    expectProblemCode(await addPublicKey(root.token, c.org.id, c.account.id, body), 400, "invalid_key");
  });

  it.each(["jwk", "pem"] as const)("a 1024-bit RSA key as %s is 400 invalid_key", async (format) => {
    const c = await newClient(root.token);
    const rsa1024 = (await crypto.subtle.generateKey(
      { name: "RSASSA-PKCS1-v1_5", modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      true,
      ["sign", "verify"],
    )) as CryptoKeyPair;
    const jwk = (await crypto.subtle.exportKey("jwk", rsa1024.publicKey)) as jose.JWK;
    const body = { publicKey: format === "jwk" ? { kty: jwk.kty, n: jwk.n, e: jwk.e } : await jose.exportSPKI(rsa1024.publicKey), alg: "RS256" };
    expectProblemCode(await addPublicKey(root.token, c.org.id, c.account.id, body), 400, "invalid_key");
  });

  it("an alg that does not match the key is 400 invalid_key", async () => {
    const c = await newClient(root.token);
    const { publicKey } = await keyPair("ES256");
    expectProblemCode(await addPublicKey(root.token, c.org.id, c.account.id, { publicKey: await jose.exportJWK(publicKey), alg: "RS256" }), 400, "invalid_key");
  });

  it("keys need service-accounts.access-tokens.edit to add (viewer: 403) and are invisible across orgs (404)", async () => {
    const { org, adminToken } = await orgWithAdmin(root.token);
    const target = await newClient(root.token, {}, org.id);
    const viewer = await newClient(root.token, { roles: [{ role: "viewer" }] }, org.id);
    const { publicKey } = await keyPair("ES256");
    const pem = await jose.exportSPKI(publicKey);
    const denied = await addPublicKey(viewer.token, org.id, target.account.id, { publicKey: pem });
    expectProblemCode(denied, 403, "permission_denied");
    expectStatus(await call("GET", keysPath(org.id, target.account.id), { token: viewer.token }), 200);
    const stranger = await orgWithAdmin(root.token);
    expectProblemCode(await addPublicKey(stranger.adminToken, org.id, target.account.id, { publicKey: pem }), 404, "not_found");
    expectProblemCode(await call("GET", keysPath(org.id, target.account.id), { token: stranger.adminToken }), 404, "not_found");
    expectStatus(await addPublicKey(adminToken, org.id, target.account.id, { publicKey: pem }), 201);
  });
});

describe("service accounts created with a publicKey", () => {
  it("the key is registered at creation and authenticates private_key_jwt", async () => {
    const { publicKey, privateKey } = await keyPair("ES256");
    const c = await newClient(root.token, { issueToken: false, roles: [{ role: "viewer" }], publicKey: await jose.exportSPKI(publicKey) });
    const list = await call("GET", keysPath(c.org.id, c.account.id), { token: root.token });
    expectStatus(list, 200);
    expect(list.json.items, list.text).toHaveLength(1);
    const res = await tryKey(privateKey, c.account.id, list.json.items[0].kid);
    expectStatus(res, 200);
    expect(jose.decodeJwt(res.json.access_token).sub, res.text).toBe(c.account.id);
  });

  it("a JWK publicKey works too", async () => {
    const { publicKey, privateKey } = await keyPair("EdDSA");
    const c = await newClient(root.token, { issueToken: false, publicKey: { ...(await jose.exportJWK(publicKey)), kid: "created-with" } });
    expectStatus(await tryKey(privateKey, c.account.id, "created-with", "EdDSA"), 200);
  });

  it("a bad publicKey is 400 and creates nothing", async () => {
    const { org } = await orgWithAdmin(root.token);
    const name = unique("keyed");
    const res = await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, { token: root.token, body: { name, publicKey: "not a key" } });
    expectProblemCode(res, 400, "invalid_key");
    expectStatus(await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, { token: root.token, body: { name } }), 201);
  });
});

describe("platform clients: POST/DELETE /api/service-accounts", () => {
  const createClient = (token: string, body: Record<string, unknown>) => call("POST", "/api/service-accounts", { token, body });

  it("root creates a client_secret_basic client; its secret works at /oauth/token", async () => {
    const res = await createClient(root.token, { name: unique("platform"), permissions: ["service-accounts.read"], tokenEndpointAuthMethod: "client_secret_basic" });
    expectStatus(res, 201);
    expect(Object.keys(res.json).sort(), res.text).toEqual(["clientId", "clientIdIssuedAt", "clientSecret"]);
    expect(res.json.clientId, res.text).toMatch(/^sa_/);
    expect(res.json.clientSecret, res.text).toMatch(/^sat_/);
    expect(Math.abs(res.json.clientIdIssuedAt - nowS()), res.text).toBeLessThan(30);
    const token = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [res.json.clientId, res.json.clientSecret] });
    expectStatus(token, 200);
    expect(token.json.scope, token.text).toBe("service-accounts.read");
    const claims = jose.decodeJwt(token.json.access_token);
    expect(claims.sub).toBe(res.json.clientId);
    expect(claims, token.text).not.toHaveProperty("org_id");
  });

  it("an org-admin may not create (403) or delete (403) platform clients", async () => {
    const { adminToken } = await orgWithAdmin(root.token);
    const body = { name: unique("platform"), permissions: ["service-accounts.read"], tokenEndpointAuthMethod: "client_secret_basic" };
    expectProblemCode(await createClient(adminToken, body), 403, "permission_denied");
    const made = await createClient(root.token, body);
    expectStatus(made, 201);
    expectProblemCode(await call("DELETE", `/api/service-accounts/${made.json.clientId}`, { token: adminToken }), 403, "permission_denied");
    expectUnauthorized(await call("POST", "/api/service-accounts", { body }));
  });

  it("private_key_jwt needs publicKey (400 without); with it: 201, no clientSecret, and the key authenticates", async () => {
    const base = { name: unique("platform"), permissions: ["orgs.read"], tokenEndpointAuthMethod: "private_key_jwt" };
    expectProblemCode(await createClient(root.token, base), 400, "validation_failed");
    const { publicKey, privateKey } = await keyPair("ES256");
    const res = await createClient(root.token, { ...base, publicKey: await jose.exportSPKI(publicKey) });
    expectStatus(res, 201);
    expect(Object.keys(res.json).sort(), res.text).toEqual(["clientId", "clientIdIssuedAt"]);
    const token = await tryKey(privateKey, res.json.clientId, undefined);
    expectStatus(token, 200);
    expect(token.json.scope, token.text).toBe("orgs.read");
  });

  it("client_secret_basic with a publicKey, a bad publicKey, or an unknown permission is 400", async () => {
    const { publicKey } = await keyPair("ES256");
    const pem = await jose.exportSPKI(publicKey);
    expectProblemCode(
      await createClient(root.token, { name: unique("p"), permissions: [], tokenEndpointAuthMethod: "client_secret_basic", publicKey: pem }),
      400,
      "validation_failed",
    );
    const bad = await createClient(root.token, { name: unique("p"), permissions: [], tokenEndpointAuthMethod: "private_key_jwt", publicKey: "garbage" });
    expect(bad.status, bad.text).toBe(400);
    const unknown = await createClient(root.token, { name: unique("p"), permissions: ["service-accounts.read", "world.domination"], tokenEndpointAuthMethod: "client_secret_basic" });
    expectProblemCode(unknown, 400, "validation_failed");
    expect(unknown.text).toContain("world.domination");
    expectProblemCode(await createClient(root.token, { name: unique("p"), permissions: [], tokenEndpointAuthMethod: "client_secret_post" }), 400, "validation_failed");
  });

  it("DELETE: 204, then the secret is refused (401 invalid_client), the key too, and a second DELETE is 404", async () => {
    const secretClient = await createClient(root.token, { name: unique("platform"), permissions: ["service-accounts.read"], tokenEndpointAuthMethod: "client_secret_basic" });
    expectStatus(secretClient, 201);
    const { clientId, clientSecret } = secretClient.json;
    expectStatus(await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [clientId, clientSecret] }), 200);
    expectStatus(await call("DELETE", `/api/service-accounts/${clientId}`, { token: root.token }), 204);
    const refused = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [clientId, clientSecret] });
    expectOAuthError(refused, 401, "invalid_client");
    expectUnauthorized(await call("GET", "/api/v1/orgs", { token: clientSecret }));
    expectProblemCode(await call("DELETE", `/api/service-accounts/${clientId}`, { token: root.token }), 404, "not_found");

    const { publicKey, privateKey } = await keyPair("ES256");
    const keyClient = await createClient(root.token, { name: unique("platform"), permissions: [], tokenEndpointAuthMethod: "private_key_jwt", publicKey: await jose.exportJWK(publicKey) });
    expectStatus(keyClient, 201);
    expectStatus(await tryKey(privateKey, keyClient.json.clientId, undefined), 200);
    expectStatus(await call("DELETE", `/api/service-accounts/${keyClient.json.clientId}`, { token: root.token }), 204);
    expectOAuthError(await tryKey(privateKey, keyClient.json.clientId, undefined), 401, "invalid_client");
  });

  it("DELETE of an org service account through the platform path is 404", async () => {
    const c = await newClient(root.token);
    expectProblemCode(await call("DELETE", `/api/service-accounts/${c.account.id}`, { token: root.token }), 404, "not_found");
    expectStatus(await call("GET", "/api/v1/orgs", { token: c.token }), 200);
  });
});
