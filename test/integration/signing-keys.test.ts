import { env } from "cloudflare:workers";
import * as jose from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { KEYSET_KEY } from "../../src/domain/credentials/kv-records.ts";
import { unwrapSigningKey, type Keyset } from "../../src/domain/signing/keyset.ts";
import { call, expectStatus, orgWithAdmin, platformRoot } from "../helpers.ts";
import { expectProblemCode, expectUnauthorized, ISSUER, jwtFor, servedJwks, TOKEN_EXCHANGE, verifyAgainstJwks } from "./oauth-helpers.ts";

/**
 * The JWT signing keys: the served JWKS, root-only rotation (publish before use, old keys kept
 * while their JWTs live), and private halves that never reach KV in clear. Tests in this file run
 * in order and rotate the one global keyset.
 */

let root: { id: string; token: string };
let admin: Awaited<ReturnType<typeof orgWithAdmin>>;
beforeAll(async () => {
  root = await platformRoot();
  admin = await orgWithAdmin(root.token);
});

const rotate = (token: string, body?: unknown) => call("POST", "/api/v1/admin/signing-keys/rotate", { token, ...(body === undefined ? {} : { body }) });
const kidOf = (jwt: string) => jose.decodeProtectedHeader(jwt).kid!;
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "k", "oth"];

describe("JWKS and metadata", () => {
  it("GET /.well-known/jwks.json is public, cacheable, and carries public keys only", async () => {
    const { keys, res } = await servedJwks();
    expect(res.headers.get("cache-control") ?? "", res.text).toMatch(/\bpublic\b/);
    expect(res.headers.get("cache-control") ?? "", res.text).toMatch(/\bmax-age=300\b/);
    expect(keys.length, res.text).toBeGreaterThan(0);
    for (const key of keys) {
      expect(key.kid, res.text).toBeTypeOf("string");
      expect(["ES256", "RS256", "EdDSA"], res.text).toContain(key.alg);
      expect(key.use, res.text).toBe("sig");
      for (const member of PRIVATE_MEMBERS) expect(key, res.text).not.toHaveProperty(member);
    }
    expect(new Set(keys.map((k) => k.kid)).size, res.text).toBe(keys.length);
  });

  it("GET /.well-known/oauth-authorization-server (RFC 8414)", async () => {
    const res = await call("GET", "/.well-known/oauth-authorization-server");
    expectStatus(res, 200);
    const m = res.json;
    expect(m, res.text).toMatchObject({
      issuer: ISSUER,
      token_endpoint: `${ISSUER}/oauth/token`,
      jwks_uri: `${ISSUER}/.well-known/jwks.json`,
      introspection_endpoint: `${ISSUER}/oauth/introspect`,
      revocation_endpoint: `${ISSUER}/oauth/revoke`,
    });
    expect(m.grant_types_supported, res.text).toEqual(expect.arrayContaining(["client_credentials", TOKEN_EXCHANGE]));
    const methods = ["client_secret_basic", "client_secret_post", "private_key_jwt"];
    expect([...m.token_endpoint_auth_methods_supported].sort(), res.text).toEqual(methods.sort());
    expect(m.token_endpoint_auth_signing_alg_values_supported, res.text).toEqual(expect.arrayContaining(["ES256", "RS256", "EdDSA"]));
    expect(m.introspection_endpoint_auth_methods_supported, res.text).toEqual(expect.arrayContaining(methods));
    expect(m.revocation_endpoint_auth_methods_supported, res.text).toEqual(expect.arrayContaining(methods));
    // The advertised endpoints exist at those paths.
    expectStatus(await call("GET", new URL(m.jwks_uri).pathname), 200);
    const token = await call("POST", new URL(m.token_endpoint).pathname, { body: "grant_type=client_credentials", headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(token.status, token.text).toBe(401);
  });
});

describe("signing keys: administration is root only", () => {
  it("an org-admin may neither rotate nor list (403), nor may the anonymous (401)", async () => {
    expectProblemCode(await rotate(admin.adminToken, { activateInSeconds: 0 }), 403, "permission_denied");
    expectProblemCode(await call("GET", "/api/v1/admin/signing-keys", { token: admin.adminToken }), 403, "permission_denied");
    expectUnauthorized(await rotate("", { activateInSeconds: 0 }));
    expectUnauthorized(await call("GET", "/api/v1/admin/signing-keys"));
  });

  it("a root JWT narrowed to orgs.read may not rotate (403)", async () => {
    const jwt = await jwtFor(root.token, { scope: "orgs.read" });
    expectProblemCode(await rotate(jwt, { activateInSeconds: 0 }), 403, "permission_denied");
  });

  it.each([-1, 86_401, 1.5, "0"])("activateInSeconds %j is a 400 validation problem", async (activateInSeconds) => {
    expectProblemCode(await rotate(root.token, { activateInSeconds }), 400, "validation_failed");
  });
});

describe("signing keys: rotation", () => {
  it("activateInSeconds 0: new JWTs get the new kid; JWTs minted before still verify and authenticate", async () => {
    const before = await jwtFor(admin.adminToken);
    const oldKid = kidOf(before);
    const res = await rotate(root.token, { activateInSeconds: 0 });
    expectStatus(res, 200);
    const newKid = res.json.kid as string;
    expect(newKid, res.text).toBeTypeOf("string");
    expect(newKid, res.text).not.toBe(oldKid);
    const after = await jwtFor(admin.adminToken);
    expect(kidOf(after), "a JWT minted after the rotation").toBe(newKid);

    const { keys } = await servedJwks();
    expect(keys.map((k) => k.kid), JSON.stringify(keys)).toEqual(expect.arrayContaining([oldKid, newKid]));
    await verifyAgainstJwks(before);
    await verifyAgainstJwks(after);
    // Both are accepted as management-API credentials.
    const path = `/api/v1/orgs/${admin.org.id}/service-accounts/${admin.admin.id}`;
    expectStatus(await call("GET", path, { token: before }), 200);
    expectStatus(await call("GET", path, { token: after }), 200);
  });

  it("activateInSeconds 3600: the new key is published at once, but JWTs keep the old kid (publish before use)", async () => {
    const currentKid = kidOf(await jwtFor(admin.adminToken));
    const res = await rotate(root.token, { activateInSeconds: 3600 });
    expectStatus(res, 200);
    const nextKid = res.json.kid as string;
    expect(nextKid, res.text).not.toBe(currentKid);
    const { keys } = await servedJwks();
    expect(keys.map((k) => k.kid), JSON.stringify(keys)).toEqual(expect.arrayContaining([currentKid, nextKid]));
    for (let i = 0; i < 3; i++) {
      const jwt = await jwtFor(admin.adminToken);
      expect(kidOf(jwt), "JWTs are signed with the current key until the new one activates").toBe(currentKid);
      await verifyAgainstJwks(jwt);
    }
    const listed = await call("GET", "/api/v1/admin/signing-keys", { token: root.token });
    expectStatus(listed, 200);
    const states = Object.fromEntries(listed.json.items.map((k: { kid: string; state: string }) => [k.kid, k.state]));
    expect(states[nextKid], listed.text).toBe("next");
    expect(states[currentKid], listed.text).toBe("active");
  });

  it("GET /api/v1/admin/signing-keys lists next, active and retired keys with their facts only", async () => {
    const res = await call("GET", "/api/v1/admin/signing-keys", { token: root.token });
    expectStatus(res, 200);
    const items: { kid: string; alg: string; state: string; createdAt: string; activatesAt: string; retiredAt: string | null }[] = res.json.items;
    const states = items.map((k) => k.state);
    expect(states, res.text).toContain("next");
    expect(states, res.text).toContain("retired");
    expect(states.filter((s) => s === "active"), res.text).toHaveLength(1);
    for (const item of items) {
      expect(Object.keys(item).sort(), res.text).toEqual(["activatesAt", "alg", "createdAt", "kid", "retiredAt", "state"]);
      if (item.state === "retired") expect(Date.parse(item.retiredAt!), res.text).toBeLessThanOrEqual(Date.now());
      if (item.state === "next") expect(Date.parse(item.activatesAt), res.text).toBeGreaterThan(Date.now());
    }
    expect(res.text).not.toMatch(/"(d|wrapped|iv|data)"/);
  });

  it("a later immediate rotation supersedes the pending key; every kid still in the JWKS verifies", async () => {
    const res = await rotate(root.token, { activateInSeconds: 0 });
    expectStatus(res, 200);
    const jwt = await jwtFor(admin.adminToken);
    expect(kidOf(jwt)).toBe(res.json.kid);
    await verifyAgainstJwks(jwt);
    const active = res.json.items.filter((k: { state: string }) => k.state === "active");
    expect(active.map((k: { kid: string }) => k.kid), res.text).toEqual([res.json.kid]);
  });
});

describe("signing keys: storage", () => {
  it("KV signing:keyset holds public JWKs and wrapped private keys only", async () => {
    await jwtFor(admin.adminToken);
    const raw = await env.TOKENS.get(KEYSET_KEY);
    expect(raw, "signing:keyset in KV").not.toBeNull();
    expect(raw!).not.toMatch(/"d"\s*:/);
    expect(raw!).not.toMatch(/PRIVATE KEY/);
    const keyset = JSON.parse(raw!) as Keyset;
    expect(keyset.keys.length).toBeGreaterThan(0);
    for (const key of keyset.keys) {
      for (const member of PRIVATE_MEMBERS) expect(key.publicJwk, JSON.stringify(key.publicJwk)).not.toHaveProperty(member);
      expect(Object.keys(key.wrapped).sort()).toEqual(["data", "iv"]);
      expect(jose.base64url.decode(key.wrapped.iv).length).toBe(12);
      // The wrapped bytes are not a usable PKCS#8 key...
      const asPkcs8 = await crypto.subtle
        .importKey("pkcs8", jose.base64url.decode(key.wrapped.data), { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"])
        .then(() => "imported", () => "refused");
      expect(asPkcs8, `wrapped data of ${key.kid} imports as a key in clear`).toBe("refused");
      // ...but unwrap with the encryption key into one that signs for the published public key.
      const privateKey = await unwrapSigningKey(key, env.SIGNING_KEY_ENCRYPTION_KEY!);
      const jws = await new jose.CompactSign(new TextEncoder().encode("probe")).setProtectedHeader({ alg: key.alg }).sign(privateKey);
      await jose.compactVerify(jws, await jose.importJWK({ ...key.publicJwk, alg: key.alg } as jose.JWK, key.alg));
    }
  });

  it("the wrapped keys do not unwrap under another secret", async () => {
    const keyset = (await env.TOKENS.get<Keyset>(KEYSET_KEY, "json"))!;
    await expect(unwrapSigningKey(keyset.keys[0]!, "not-the-signing-key-encryption-key-0000")).rejects.toThrow();
  });
});
