import { env } from "cloudflare:workers";
import * as jose from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { createCtx } from "../../src/domain/shared/context.ts";
import { verifyJwt } from "../../src/domain/signing/jwt.ts";
import { call, expectStatus, orgWithAdmin, platformRoot } from "../helpers.ts";
import {
  API_AUDIENCE,
  b64json,
  expectProblemCode,
  expectUnauthorized,
  ISSUER,
  jwtFor,
  nowS,
  postForm,
  servedJwks,
  signWithServiceKey,
  standardClaims,
} from "./oauth-helpers.ts";

/** Our own JWTs as `Authorization: Bearer` credentials of the management API, and every way to fake one. */

let root: { id: string; token: string };
let admin: { org: any; admin: any; adminToken: string };
beforeAll(async () => {
  root = await platformRoot();
  admin = await orgWithAdmin(root.token);
});

const accountPath = () => `/api/v1/orgs/${admin.org.id}/service-accounts/${admin.admin.id}`;
const getAccount = (token: string) => call("GET", accountPath(), { token });

describe("JWT bearer: accepted", () => {
  it("an exchanged JWT authenticates the management API", async () => {
    const jwt = await jwtFor(admin.adminToken);
    const res = await getAccount(jwt);
    expectStatus(res, 200);
    expect(res.json.id, res.text).toBe(admin.admin.id);
  });

  it("a JWT from /oauth/token (client_credentials, default audience) authenticates too", async () => {
    const res = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [admin.admin.id, admin.adminToken] });
    expectStatus(res, 200);
    expectStatus(await getAccount(res.json.access_token), 200);
  });

  it("control: a JWT signed with the service key and the right claims is accepted (so the rejections below are about the claim)", async () => {
    const jwt = await signWithServiceKey(admin.adminToken, { typ: "at+jwt" }, standardClaims(admin.admin.id, { scope: "service-accounts.read" }));
    expectStatus(await getAccount(jwt), 200);
  });
});

describe("JWT bearer: forged and malformed tokens are 401", () => {
  it("a JWT signed by another ES256 key under our kid", async () => {
    const real = await jwtFor(admin.adminToken);
    const { kid } = jose.decodeProtectedHeader(real);
    const { privateKey } = await jose.generateKeyPair("ES256");
    const forged = await new jose.SignJWT(standardClaims(admin.admin.id))
      .setProtectedHeader({ alg: "ES256", kid, typ: "at+jwt" })
      .sign(privateKey);
    expectUnauthorized(await getAccount(forged));
  });

  it("a real JWT with its payload swapped (signature of another payload)", async () => {
    const [h, , s] = (await jwtFor(admin.adminToken, { scope: "service-accounts.read" })).split(".");
    const forged = `${h}.${b64json(standardClaims(admin.admin.id, { scope: "service-accounts.edit" }))}.${s}`;
    expectUnauthorized(await getAccount(forged));
  });

  it("alg: none (with and without a trailing signature)", async () => {
    const { kid } = jose.decodeProtectedHeader(await jwtFor(admin.adminToken));
    const unsigned = `${b64json({ alg: "none", kid, typ: "at+jwt" })}.${b64json(standardClaims(admin.admin.id))}.`;
    expectUnauthorized(await getAccount(unsigned));
    const noneUpper = `${b64json({ alg: "NONE", kid, typ: "at+jwt" })}.${b64json(standardClaims(admin.admin.id))}.AAAA`;
    expectUnauthorized(await getAccount(noneUpper));
  });

  it("HS256 signed with the published public key as the secret (algorithm confusion)", async () => {
    const { kid } = jose.decodeProtectedHeader(await jwtFor(admin.adminToken));
    const { keys } = await servedJwks();
    const jwk = keys.find((k) => k.kid === kid)!;
    expect(jwk, JSON.stringify(keys)).toBeDefined();
    const publicKey = (await jose.importJWK(jwk, "ES256", { extractable: true })) as CryptoKey;
    const secrets = [JSON.stringify(jwk), JSON.stringify({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }), await jose.exportSPKI(publicKey)];
    for (const secret of secrets) {
      const confused = await new jose.SignJWT(standardClaims(admin.admin.id))
        .setProtectedHeader({ alg: "HS256", kid, typ: "at+jwt" })
        .sign(new TextEncoder().encode(secret));
      expectUnauthorized(await getAccount(confused));
    }
  });

  it("a JWT without kid, or with an unknown kid", async () => {
    const claims = standardClaims(admin.admin.id);
    const real = await jwtFor(admin.adminToken);
    const [, , s] = real.split(".");
    const { alg } = jose.decodeProtectedHeader(real);
    expectUnauthorized(await getAccount(`${b64json({ alg, typ: "at+jwt" })}.${b64json(claims)}.${s}`));
    expectUnauthorized(await getAccount(`${b64json({ alg, kid: "no-such-kid", typ: "at+jwt" })}.${b64json(claims)}.${s}`));
  });

  it.each(["garbage", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.", "x".repeat(9000)])("garbage %#", async (credential) => {
    expectUnauthorized(await getAccount(credential));
  });
});

describe("JWT bearer: claims are checked (401)", () => {
  it("wrong typ (JWT) and no typ", async () => {
    const claims = standardClaims(admin.admin.id);
    expectUnauthorized(await getAccount(await signWithServiceKey(admin.adminToken, { typ: "JWT" }, claims)));
    expectUnauthorized(await getAccount(await signWithServiceKey(admin.adminToken, {}, claims)));
  });

  it("wrong iss", async () => {
    const jwt = await signWithServiceKey(admin.adminToken, { typ: "at+jwt" }, standardClaims(admin.admin.id, { iss: "https://evil.test" }));
    expectUnauthorized(await getAccount(jwt));
  });

  it("wrong aud: a JWT minted for another resource through /oauth/token", async () => {
    const res = await postForm("/oauth/token", { grant_type: "client_credentials", resource: API_AUDIENCE }, { basic: [admin.admin.id, admin.adminToken] });
    expectStatus(res, 200);
    expect(jose.decodeJwt(res.json.access_token).aud, res.text).toBe(API_AUDIENCE);
    expectUnauthorized(await getAccount(res.json.access_token));
  });

  it("wrong aud: crafted", async () => {
    const jwt = await signWithServiceKey(admin.adminToken, { typ: "at+jwt" }, standardClaims(admin.admin.id, { aud: "https://evil.test" }));
    expectUnauthorized(await getAccount(jwt));
  });

  it("expired: crafted with exp two minutes ago (beyond any clock tolerance)", async () => {
    const iat = nowS() - 600;
    const jwt = await signWithServiceKey(admin.adminToken, { typ: "at+jwt" }, standardClaims(admin.admin.id, { iat, exp: nowS() - 120 }));
    expectUnauthorized(await getAccount(jwt));
  });

  it("expired: 2 s past exp is refused (our own JWTs get no 30 s of grace), and so is a few seconds past with the clock", async () => {
    const jwt = await signWithServiceKey(admin.adminToken, { typ: "at+jwt" }, standardClaims(admin.admin.id, { iat: nowS() - 60, exp: nowS() - 2 }));
    expectUnauthorized(await getAccount(jwt));
    const ctx = createCtx(env, { actorId: "test", requestId: null, ip: null, userAgent: null });
    const real = await jwtFor(admin.adminToken, { duration_seconds: 60 });
    const exp = jose.decodeJwt(real).exp!;
    expect(await verifyJwt({ ...ctx, now: () => exp * 1000 - 1 }, real, ISSUER), "a millisecond before exp").not.toBeNull();
    expect(await verifyJwt({ ...ctx, now: () => exp * 1000 }, real, ISSUER), "at exp").toBeNull();
    expect(await verifyJwt({ ...ctx, now: () => exp * 1000 + 3000 }, real, ISSUER), "3 s past exp").toBeNull();
  });

  it("not yet valid: iat up to OWN_JWT_CLOCK_SKEW_SECONDS (5 s) ahead passes (an isolate whose clock runs ahead), further is refused", async () => {
    const ahead = (s: number) => signWithServiceKey(admin.adminToken, { typ: "at+jwt" }, standardClaims(admin.admin.id, { iat: nowS() + s, exp: nowS() + 300, scope: "service-accounts.read" }));
    expectStatus(await getAccount(await ahead(3)), 200);
    expectUnauthorized(await getAccount(await ahead(20)));
  });

  it("expired: verifyJwt refuses a real JWT once the clock is 10 minutes on", async () => {
    const jwt = await jwtFor(admin.adminToken);
    const ctx = createCtx(env, { actorId: "test", requestId: null, ip: null, userAgent: null });
    const now = await verifyJwt(ctx, jwt, ISSUER);
    expect(now?.sub, "the JWT verifies at the current time").toBe(admin.admin.id);
    const later = { ...ctx, now: () => Date.now() + 10 * 60_000 };
    expect(await verifyJwt(later, jwt, ISSUER)).toBeNull();
  });

  it("missing sub, jti, exp or iat", async () => {
    for (const claim of ["sub", "jti", "exp", "iat"] as const) {
      const claims = standardClaims(admin.admin.id);
      delete claims[claim];
      const jwt = await signWithServiceKey(admin.adminToken, { typ: "at+jwt" }, claims);
      const res = await getAccount(jwt);
      expect(res.status, `without ${claim}: ${res.text}`).toBe(401);
    }
  });

  it("a sub that is not a live account (deleted after the JWT was issued)", async () => {
    const other = await orgWithAdmin(root.token);
    const jwt = await jwtFor(other.adminToken);
    const path = `/api/v1/orgs/${other.org.id}/service-accounts/${other.admin.id}`;
    expectStatus(await call("GET", path, { token: jwt }), 200);
    expectStatus(await call("DELETE", path, { token: root.token }), 204);
    expectUnauthorized(await call("GET", `/api/v1/orgs/${other.org.id}`, { token: jwt }));
  });

  it("a disabled account's JWT", async () => {
    const other = await orgWithAdmin(root.token);
    const jwt = await jwtFor(other.adminToken);
    const path = `/api/v1/orgs/${other.org.id}/service-accounts/${other.admin.id}`;
    expectStatus(await call("GET", path, { token: jwt }), 200);
    expectStatus(await call("PATCH", path, { token: root.token, body: { status: "disabled" } }), 200);
    expectUnauthorized(await call("GET", path, { token: jwt }));
  });
});

describe("JWT bearer: revocation by jti", () => {
  it("a JWT revoked through POST /oauth/revoke is refused; another JWT of the same account is not", async () => {
    const jwt = await jwtFor(admin.adminToken);
    const sibling = await jwtFor(admin.adminToken);
    expectStatus(await getAccount(jwt), 200);
    const res = await postForm("/oauth/revoke", { token: jwt }, { basic: [admin.admin.id, admin.adminToken] });
    expectStatus(res, 200);
    expectUnauthorized(await getAccount(jwt));
    expectStatus(await getAccount(sibling), 200);
  });

  it("revoking the access token kills the JWTs already minted from it (they carry it as source_token_id)", async () => {
    const other = await orgWithAdmin(root.token);
    const jwt = await jwtFor(other.adminToken);
    const path = `/api/v1/orgs/${other.org.id}/service-accounts/${other.admin.id}`;
    expectStatus(await call("GET", path, { token: jwt }), 200);
    const revoked = await call("DELETE", `${path}/tokens/${other.admin.token.id}`, { token: root.token });
    expectStatus(revoked, 204);
    expectUnauthorized(await call("GET", path, { token: other.adminToken }));
    expectUnauthorized(await call("GET", path, { token: jwt }));
  });
});

describe("JWT bearer: scope narrows what the JWT can do", () => {
  it("an org-admin's JWT with scope service-accounts.read can read but not edit (403)", async () => {
    const jwt = await jwtFor(admin.adminToken, { scope: "service-accounts.read" });
    expectStatus(await getAccount(jwt), 200);
    const patch = await call("PATCH", accountPath(), { token: jwt, body: { description: "narrowed" } });
    const body = expectProblemCode(patch, 403, "permission_denied");
    expect(body.missing, patch.text).toEqual(["service-accounts.edit"]);
    // The access token itself (no scope limit) can.
    expectStatus(await call("PATCH", accountPath(), { token: admin.adminToken, body: { description: "full" } }), 200);
  });

  it("a root JWT narrowed to orgs.read cannot create orgs or edit accounts", async () => {
    const jwt = await jwtFor(root.token, { scope: "orgs.read" });
    expectStatus(await call("GET", `/api/v1/orgs/${admin.org.id}`, { token: jwt }), 200);
    const create = await call("POST", "/api/v1/orgs", { token: jwt, body: { slug: `narrow-${nowS()}`, name: "Narrow" } });
    expectProblemCode(create, 403, "permission_denied");
    expectProblemCode(await call("PATCH", accountPath(), { token: jwt, body: { description: "x" } }), 403, "permission_denied");
  });
});
