import * as jose from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { checksum, isWellFormedAccessToken, TOKEN_PREFIX } from "../../src/domain/credentials/access-token.ts";
import { call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { acceptedAt, ALL_POINTS, apiOperations, type Holder, type Probes, refusedAt, send, snapshotOrg, withoutAuthLimiter } from "./attack-helpers.ts";
import { answer, authorizeFor, claimsOf, inviteTo } from "./authz-helpers.ts";
import {
  addPublicKey,
  API_AUDIENCE,
  b64json,
  expectOAuthError,
  ISSUER,
  JWT_BEARER,
  JWT_TOKEN_TYPE,
  jwtFor,
  nowS,
  postForm,
  servedJwks,
  signWithServiceKey,
  standardClaims,
  TOKEN_EXCHANGE,
} from "./oauth-helpers.ts";
import { webhookWithDelivery } from "./webhook-helpers.ts";

/**
 * Token attacks, each tried at every place the credential is accepted (attack-helpers `Point`):
 * Bearer on the management API, the exchange, /oauth/token client_secret_basic and _post,
 * private_key_jwt, RFC 8693 subject_token, /oauth/introspect (exactly {active:false}), client
 * authentication of /oauth/introspect and /oauth/revoke, and /oauth/revoke of the credential.
 *
 * JWT attacks come in two shapes: an access-token JWT (typ at+jwt, iss = us, our kid) and a
 * client assertion (iss = sub = the client, aud = us, the client's kid). Both are thrown at every point.
 */

const MINUTE_MS = 60_000;

interface KeyedAccount {
  id: string;
  token: string;
  tokenId: string;
  privateKey: CryptoKey;
  publicJwk: jose.JWK;
  pem: string;
  kid: string;
}

let root: { id: string; token: string };
let A: Awaited<ReturnType<typeof orgWithAdmin>>;
let B: Awaited<ReturnType<typeof orgWithAdmin>>;
/** The victim: a viewer of org A with an access token and a registered ES256 key. */
let v: KeyedAccount;
/** Another account of org A with its own key (for "a kid naming another key"). */
let w: KeyedAccount;
/** The good clients of the probes: a viewer-less account of A introspects, root revokes. */
let rs: Probes;
/** The attacker's own ES256 key pair, registered nowhere. */
let attacker: { privateKey: CryptoKey; publicJwk: jose.JWK };
/** Our signing key as served in the JWKS. */
let ourKid: string;
let ourJwk: jose.JWK;

const holderV = (): Holder => ({ orgId: A.org.id, accountId: v.id });

async function keyedAccount(adminToken: string, orgId: string, kid: string, roles = [{ role: "viewer" }]): Promise<KeyedAccount> {
  const created = await call("POST", `/api/v1/orgs/${orgId}/service-accounts`, { token: adminToken, body: { name: unique("sa"), roles, issueToken: true } });
  expectStatus(created, 201);
  const { publicKey, privateKey } = await jose.generateKeyPair("ES256", { extractable: true });
  const publicJwk = await jose.exportJWK(publicKey);
  const key = await addPublicKey(adminToken, orgId, created.json.id, { publicKey: { ...publicJwk, kid } });
  expectStatus(key, 201);
  return { id: created.json.id, token: created.json.token.token, tokenId: created.json.token.id, privateKey, publicJwk, pem: await jose.exportSPKI(publicKey), kid };
}

let restoreLimiter: () => void;
beforeAll(async () => {
  restoreLimiter = withoutAuthLimiter();
  root = await platformRoot();
  A = await orgWithAdmin(root.token);
  B = await orgWithAdmin(root.token);
  v = await keyedAccount(A.adminToken, A.org.id, `v-${unique("k")}`);
  w = await keyedAccount(A.adminToken, A.org.id, `w-${unique("k")}`);
  const rsAccount = await call("POST", `/api/v1/orgs/${A.org.id}/service-accounts`, { token: A.adminToken, body: { name: unique("rs"), issueToken: true } });
  expectStatus(rsAccount, 201);
  rs = { introspector: { id: rsAccount.json.id, secret: rsAccount.json.token.token }, revoker: { id: root.id, secret: root.token } };
  const pair = await jose.generateKeyPair("ES256", { extractable: true });
  attacker = { privateKey: pair.privateKey, publicJwk: await jose.exportJWK(pair.publicKey) };
  ourKid = jose.decodeProtectedHeader(await jwtFor(v.token)).kid!;
  const { keys } = await servedJwks();
  ourJwk = keys.find((k) => k.kid === ourKid)!;
  expect(ourJwk, JSON.stringify(keys)).toBeDefined();
});

afterEach(() => {
  vi.useRealTimers();
});

afterAll(() => restoreLimiter());

/** Claims of a private_key_jwt assertion by `clientId` (RFC 7523), fresh jti. */
const assertionClaims = (clientId: string, o: jose.JWTPayload = {}): jose.JWTPayload => ({
  iss: clientId,
  sub: clientId,
  aud: ISSUER,
  iat: nowS(),
  exp: nowS() + 60,
  jti: crypto.randomUUID(),
  ...o,
});

const sign = (key: CryptoKey, header: jose.JWTHeaderParameters, payload: jose.JWTPayload) => new jose.SignJWT(payload).setProtectedHeader(header).sign(key);
const unsigned = (header: Record<string, unknown>, payload: jose.JWTPayload, sig = "") => `${b64json(header)}.${b64json(payload)}.${sig}`;

/** A valid assertion of v (the control of the assertion-shaped attacks). */
const validAssertion = (o: jose.JWTPayload = {}, header: Partial<jose.JWTHeaderParameters> = {}) => sign(v.privateKey, { alg: "ES256", kid: v.kid, ...header }, assertionClaims(v.id, o));

/** Moves the clock of the test and of the Worker (same isolate) by `ms`. */
function advanceClock(ms: number) {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(Date.now() + ms);
}

describe("controls: the probes accept good credentials (so every refusal below is about the attack)", () => {
  it("an access token, a JWT and a client assertion each pass the points where they belong", async () => {
    await acceptedAt("access token", v.token, holderV(), rs, ["bearer", "exchange", "basic", "post", "subject", "introspect", "clientAuth"]);
    const jwt = await jwtFor(v.token);
    await acceptedAt("JWT", jwt, holderV(), rs, ["bearer", "subject", "introspect"]);
    await acceptedAt("assertion", await validAssertion(), holderV(), rs, ["assertion"]);
    const introspectByAssertion = await postForm("/oauth/introspect", { token: jwt, client_assertion_type: JWT_BEARER, client_assertion: await validAssertion() });
    expect(introspectByAssertion.json?.active, introspectByAssertion.text).toBe(true);
    // A signature made with our key over standard claims passes too (signWithServiceKey is a faithful forger).
    await acceptedAt("service-signed", await signWithServiceKey(v.token, { typ: "at+jwt" }, standardClaims(v.id, { scope: "service-accounts.read" })), holderV(), rs, ["bearer", "introspect"]);
  });
});

describe("JWT: alg none", () => {
  it("as an access-token JWT and as a client assertion, with and without a signature part, is refused everywhere", async () => {
    const at = standardClaims(v.id, { scope: "service-accounts.read" });
    for (const alg of ["none", "NONE", "None"]) {
      await refusedAt(`at+jwt alg ${alg}`, unsigned({ alg, kid: ourKid, typ: "at+jwt" }, at), holderV(), rs);
      await refusedAt(`at+jwt alg ${alg} sig`, unsigned({ alg, kid: ourKid, typ: "at+jwt" }, at, "AAAA"), holderV(), rs);
      await refusedAt(`assertion alg ${alg}`, unsigned({ alg, kid: v.kid }, assertionClaims(v.id)), holderV(), rs);
      await refusedAt(`assertion alg ${alg} no kid`, unsigned({ alg }, assertionClaims(v.id)), holderV(), rs);
    }
  });
});

describe("JWT: HS256 keyed with a public key (algorithm confusion)", () => {
  it("our published key as the HMAC secret (JWK JSON, bare coordinates, SPKI PEM) is refused everywhere", async () => {
    const publicKey = (await jose.importJWK(ourJwk, "ES256", { extractable: true })) as CryptoKey;
    const secrets = [JSON.stringify(ourJwk), JSON.stringify({ kty: ourJwk.kty, crv: ourJwk.crv, x: ourJwk.x, y: ourJwk.y }), await jose.exportSPKI(publicKey)];
    for (const [i, secret] of secrets.entries()) {
      const jwt = await new jose.SignJWT(standardClaims(v.id, { scope: "service-accounts.read" }))
        .setProtectedHeader({ alg: "HS256", kid: ourKid, typ: "at+jwt" })
        .sign(new TextEncoder().encode(secret));
      await refusedAt(`HS256 with our key #${i}`, jwt, holderV(), rs);
    }
  });

  it("the client's registered public key as the HMAC secret of an assertion is refused everywhere", async () => {
    for (const [i, secret] of [v.pem, JSON.stringify({ ...v.publicJwk, kid: v.kid }), JSON.stringify(v.publicJwk)].entries()) {
      const jwt = await new jose.SignJWT(assertionClaims(v.id)).setProtectedHeader({ alg: "HS256", kid: v.kid }).sign(new TextEncoder().encode(secret));
      await refusedAt(`HS256 assertion #${i}`, jwt, holderV(), rs);
    }
  });
});

describe("JWT: kid and key-locating headers", () => {
  const injected = ["../../../../etc/passwd", "..%2F..%2Fsigning:keyset", "signing:keyset", "' OR '1'='1' --", '"; drop table service_accounts; --', "*", "%", "\\u0000", "x".repeat(600), "sat_x"];

  it.each(injected)("an injected kid %j (attacker-signed) is refused everywhere, in both shapes", async (kid) => {
    await refusedAt("at+jwt", await sign(attacker.privateKey, { alg: "ES256", kid, typ: "at+jwt" }, standardClaims(v.id)), holderV(), rs);
    await refusedAt("assertion", await sign(attacker.privateKey, { alg: "ES256", kid }, assertionClaims(v.id)), holderV(), rs);
  });

  it("injected kids on a JWT signed with our own key are refused too (the kid must name the key that signed)", async () => {
    for (const kid of injected.slice(0, 5)) {
      await refusedAt(`service-signed kid ${kid}`, await signWithServiceKey(v.token, { typ: "at+jwt", kid }, standardClaims(v.id)), holderV(), rs);
    }
  });

  it("a kid naming another key: the client's own key, our next key, another account's key, our key in an assertion", async () => {
    // A client "mints its own access token" with its registered key and kid.
    await refusedAt("at+jwt signed by the client's key", await sign(v.privateKey, { alg: "ES256", kid: v.kid, typ: "at+jwt" }, standardClaims(v.id)), holderV(), rs);
    // After a rotation, two of our keys are published: signing with the active one under the other's kid fails.
    const rotated = await call("POST", "/api/v1/admin/signing-keys/rotate", { token: root.token, body: { activateInSeconds: 3600 } });
    expectStatus(rotated, 200);
    const nextKid = rotated.json.kid as string;
    expect(nextKid).not.toBe(ourKid);
    expect((await servedJwks()).keys.map((k) => k.kid)).toContain(nextKid);
    await refusedAt("our key under the next kid", await signWithServiceKey(v.token, { typ: "at+jwt", kid: nextKid }, standardClaims(v.id)), holderV(), rs);
    // An assertion for v signed with w's key, under w's kid or under v's kid or without kid.
    for (const kid of [w.kid, v.kid, undefined]) {
      await refusedAt(`assertion for v by w's key, kid ${kid}`, await sign(w.privateKey, { alg: "ES256", ...(kid ? { kid } : {}) }, assertionClaims(v.id)), holderV(), rs);
    }
    // An assertion naming our signing key's kid (attacker-signed; and signed with our key itself).
    await refusedAt("assertion with our kid", await sign(attacker.privateKey, { alg: "ES256", kid: ourKid }, assertionClaims(v.id)), holderV(), rs);
    await refusedAt("assertion signed with our key", await signWithServiceKey(v.token, {}, assertionClaims(v.id)), holderV(), rs);
    // w's registered key is w's: w's own valid assertion still works (the keys were not confused the other way).
    const own = await postForm("/oauth/token", { grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: await sign(w.privateKey, { alg: "ES256", kid: w.kid }, assertionClaims(w.id)) });
    expectStatus(own, 200);
    expect(claimsOf(own.json.access_token).sub).toBe(w.id);
  });

  it("jwk, jku, x5u and x5c headers pointing at the attacker's key are ignored, in both shapes", async () => {
    const jwk = attacker.publicJwk;
    const headers: Record<string, unknown>[] = [
      { jwk },
      { jku: "https://evil.test/.well-known/jwks.json" },
      { x5u: "https://evil.test/cert.pem" },
      { x5c: ["MIIBkTCB+wIJAKHBfpegPjMCMA0GCSqGSIb3DQEBCwUAMBQxEjAQBgNVBAMMCWxvY2FsaG9zdDAeFw0="] },
      { jwk, jku: "https://evil.test/jwks.json", x5u: "https://evil.test/cert.pem" },
    ];
    for (const [i, extra] of headers.entries()) {
      for (const kid of [ourKid, "attacker-kid", undefined]) {
        const header = { alg: "ES256", typ: "at+jwt", ...(kid ? { kid } : {}), ...extra } as jose.JWTHeaderParameters;
        await refusedAt(`at+jwt header #${i} kid ${kid}`, await sign(attacker.privateKey, header, standardClaims(v.id)), holderV(), rs);
      }
      for (const kid of [v.kid, undefined]) {
        const header = { alg: "ES256", ...(kid ? { kid } : {}), ...extra } as jose.JWTHeaderParameters;
        await refusedAt(`assertion header #${i} kid ${kid}`, await sign(attacker.privateKey, header, assertionClaims(v.id)), holderV(), rs);
      }
    }
  });
});

describe("JWT: typ confusion", () => {
  it("a valid, unused client assertion is not an access token: Bearer, exchange, client_secret, subject_token and introspection refuse it", async () => {
    const assertion = await validAssertion();
    await refusedAt("client assertion as access token", assertion, holderV(), rs, ["bearer", "exchange", "basic", "post", "subject", "introspect", "revoke"]);
    // Control: the same assertion was valid and is still unused.
    const res = await postForm("/oauth/token", { grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: assertion });
    expectStatus(res, 200);
    // An assertion that says typ at+jwt is no better (our keyset does not hold the client's kid).
    const typed = await validAssertion({}, { typ: "at+jwt" });
    await refusedAt("client assertion typed at+jwt", typed, holderV(), rs, ["bearer", "exchange", "subject", "introspect", "revoke"]);
  });

  it("one of our access-token JWTs is neither a client assertion nor a client secret, and is not used up by the attempts", async () => {
    const jwt = await jwtFor(v.token);
    await refusedAt("our JWT as client credential", jwt, holderV(), rs, ["assertion", "basic", "post", "clientAuth"]);
    expectOAuthError(
      await postForm("/oauth/token", { grant_type: "client_credentials", client_id: v.id, client_assertion_type: JWT_BEARER, client_assertion: jwt }),
      401,
      "invalid_client",
    );
    // Shaped like an assertion (iss = sub = the client) but signed with our key: still not the client's key.
    const ours = await signWithServiceKey(v.token, { typ: "at+jwt" }, { ...assertionClaims(v.id), client_id: v.id, scope: "" });
    await refusedAt("service-signed assertion", ours, holderV(), rs, ["assertion", "basic", "post", "clientAuth"]);
    expectStatus(await call("GET", `/api/v1/orgs/${A.org.id}/service-accounts/${v.id}`, { token: jwt }), 200);
  });
});

describe("JWT: time", () => {
  it("expired: a real JWT once the clock is 10 minutes on is refused everywhere (and was good before)", async () => {
    const jwt = await jwtFor(v.token, { duration_seconds: 60 });
    await acceptedAt("fresh JWT", jwt, holderV(), rs, ["bearer", "subject", "introspect"]);
    advanceClock(10 * MINUTE_MS);
    await refusedAt("expired JWT", jwt, holderV(), rs);
  });

  it("expired: an assertion whose exp passed beyond the skew is refused everywhere", async () => {
    await refusedAt("expired assertion", await validAssertion({ iat: nowS() - 600, exp: nowS() - 120 }), holderV(), rs);
  });

  it("not yet valid: nbf an hour ahead, on our JWT and on an assertion, is refused everywhere", async () => {
    const claims = standardClaims(v.id, { scope: "service-accounts.read", nbf: nowS() + 3600 });
    await refusedAt("nbf JWT", await signWithServiceKey(v.token, { typ: "at+jwt" }, claims), holderV(), rs);
    await refusedAt("nbf assertion", await validAssertion({ nbf: nowS() + 3600 }), holderV(), rs);
  });

  // Regression (found by this suite): jose checks iat only against a maximum age, so verifyJwt
  // refuses an iat beyond the clock skew itself.
  it("not yet valid: iat a year ahead on a JWT signed with our key is refused everywhere", async () => {
    const iat = nowS() + 365 * 86_400;
    const jwt = await signWithServiceKey(v.token, { typ: "at+jwt" }, standardClaims(v.id, { scope: "service-accounts.read", iat, exp: iat + 300 }));
    await refusedAt("iat-future JWT", jwt, holderV(), rs);
  });

  // Regression: the same for private_key_jwt assertions.
  it("not yet valid: iat a year ahead on a client assertion is refused", async () => {
    await refusedAt("iat-future assertion", await validAssertion({ iat: nowS() + 365 * 86_400 }), holderV(), rs, ["assertion"]);
  });
});

describe("JWT: issuer and audience", () => {
  it("wrong iss: our key over iss evil, and an assertion with iss other than the client, are refused everywhere", async () => {
    for (const iss of ["https://evil.test", `${ISSUER}/`, "http://localhost:8788", ""]) {
      await refusedAt(`iss ${iss}`, await signWithServiceKey(v.token, { typ: "at+jwt" }, standardClaims(v.id, { iss })), holderV(), rs);
    }
    await refusedAt("assertion iss w", await validAssertion({ iss: w.id }), holderV(), rs);
    await refusedAt("assertion iss us", await validAssertion({ iss: ISSUER }), holderV(), rs);
  });

  it("wrong aud: refused everywhere a Keyward audience is required; introspection reports the aud it carries", async () => {
    const minted = await postForm("/oauth/token", { grant_type: "client_credentials", resource: API_AUDIENCE }, { basic: [v.id, v.token] });
    expectStatus(minted, 200);
    const crafted = await signWithServiceKey(v.token, { typ: "at+jwt" }, standardClaims(v.id, { aud: "https://evil.test" }));
    for (const [label, jwt, aud] of [["downstream aud", minted.json.access_token, API_AUDIENCE], ["crafted aud", crafted, "https://evil.test"]] as const) {
      // Every point but introspection (audience-agnostic by design: it serves resource servers) and
      // revocation by a client that does not own it (400 unauthorized_client, oauth-introspect-revoke.test).
      await refusedAt(label, jwt, holderV(), rs, ALL_POINTS.filter((p) => p !== "introspect" && p !== "revoke"));
      const res = await postForm("/oauth/introspect", { token: jwt }, { basic: [rs.introspector.id, rs.introspector.secret] });
      expectStatus(res, 200);
      expect(res.json.aud, `introspection must show the aud so that a resource server can refuse it: ${res.text}`).toBe(aud);
    }
    for (const aud of ["https://evil.test", API_AUDIENCE, `${ISSUER}/oauth/introspect`]) {
      await refusedAt(`assertion aud ${aud}`, await validAssertion({ aud }), holderV(), rs);
    }
  });
});

describe("JWT: org confinement", () => {
  it("org A's credentials (the admin's JWT and access token) on org B's routes: every route of the OpenAPI document is 404 and B is unchanged", async () => {
    const prj = await call("POST", `/api/v1/orgs/${B.org.id}/projects`, { token: B.adminToken, body: { slug: unique("p"), name: "P" } });
    const env = await call("POST", `/api/v1/orgs/${B.org.id}/projects/${prj.json.id}/environments`, { token: B.adminToken, body: { slug: unique("e"), name: "E" } });
    const role = await call("POST", `/api/v1/orgs/${B.org.id}/roles`, { token: B.adminToken, body: { name: unique("r"), operations: ["orgs.read"] } });
    const ras = await call("GET", `/api/v1/orgs/${B.org.id}/service-accounts/${B.admin.id}/role-assignments`, { token: B.adminToken });
    const { publicKey } = await jose.generateKeyPair("ES256", { extractable: true });
    const key = await addPublicKey(B.adminToken, B.org.id, B.admin.id, { publicKey: await jose.exportSPKI(publicKey) });
    expectStatus(key, 201);
    const fed = await call("POST", `/api/v1/orgs/${B.org.id}/service-accounts/${B.admin.id}/federated-credentials`, { token: B.adminToken, body: { name: unique("f"), issuer: "https://gitlab.com", subject: "project_path:b/x:ref_type:branch:ref:main" } });
    expectStatus(fed, 201);
    // An invitation B sent (to w, an account of A: A's admin still has no say over it through B's paths).
    const inv = await inviteTo(B.adminToken, B.org.id, (await call("GET", `/api/v1/orgs/${A.org.id}/service-accounts/${w.id}`, { token: A.adminToken })).json.email, "viewer");
    expectStatus(inv, 201);
    const hook = await webhookWithDelivery(B.adminToken, B.org.id);
    const snapshot = await snapshotOrg(B.adminToken, B.org.id);
    const ids: Record<string, string> = {
      ...hook,
      org: B.org.id,
      sa: B.admin.id,
      tok: B.admin.token.id,
      key: key.json.id,
      fed: fed.json.id,
      ra: ras.json.items[0].id,
      prj: prj.json.id,
      env: env.json.id,
      role: role.json.id,
      inv: inv.json.id,
      clientId: B.admin.id,
    };
    const jwt = await jwtFor(A.adminToken);
    expect(claimsOf(jwt).org_id).toBe(A.org.id);
    const ops = (await apiOperations()).filter((op) => op.params.includes("org"));
    expect(ops.length).toBeGreaterThan(25);
    for (const token of [jwt, A.adminToken]) {
      for (const op of ops) {
        const res = await send(op, ids, token, { pem: v.pem, inviteEmail: `nobody-${unique("x")}@example.test` });
        expect(res.status, `${op.method} ${op.template} with org A's ${token === jwt ? "JWT" : "token"}: ${res.text}`).toBe(404);
      }
    }
    expect(await snapshotOrg(B.adminToken, B.org.id)).toEqual(snapshot);
  });

  // Regression (found by this suite): an RFC 8693 exchange keeps the subject JWT's org (claims
  // in that org), so a JWT for org A never comes back as one for the account's home org.
  it("a JWT for one org cannot be exchanged (RFC 8693) into a JWT for the account's home org", async () => {
    const member = await call("POST", `/api/v1/orgs/${B.org.id}/service-accounts`, { token: B.adminToken, body: { name: unique("m"), roles: [{ role: "org-admin" }], issueToken: true } });
    expectStatus(member, 201);
    const inv = await inviteTo(A.adminToken, A.org.id, member.json.email, "viewer");
    expectStatus(inv, 201);
    expectStatus(await answer(B.adminToken, B.org.id, member.json.id, inv.json.id, "accepted"), 200);
    const forA = await authorizeFor(member.json.token.token, A.org.id);
    expectStatus(forA, 200);
    expect(claimsOf(forA.json.jwt).org_id).toBe(A.org.id);
    expectStatus(await call("GET", `/api/v1/orgs/${B.org.id}/service-accounts`, { token: forA.json.jwt }), 404);
    const res = await postForm("/oauth/token", { grant_type: TOKEN_EXCHANGE, subject_token: forA.json.jwt, subject_token_type: JWT_TOKEN_TYPE });
    if (res.status === 200) {
      expect(claimsOf(res.json.access_token).org_id, `the exchanged JWT left org A: ${JSON.stringify(claimsOf(res.json.access_token))}`).toBe(A.org.id);
      expectStatus(await call("GET", `/api/v1/orgs/${B.org.id}/service-accounts`, { token: res.json.access_token }), 404);
    } else {
      expectOAuthError(res, 400, "invalid_grant");
    }
  });
});

describe("JWT: revoked jti", () => {
  it("a JWT revoked by /oauth/revoke is refused everywhere; a sibling JWT is not", async () => {
    const jwt = await jwtFor(v.token);
    const sibling = await jwtFor(v.token);
    expectStatus(await postForm("/oauth/revoke", { token: jwt }, { basic: [v.id, v.token] }), 200);
    await refusedAt("revoked JWT", jwt, holderV(), rs);
    await acceptedAt("sibling JWT", sibling, holderV(), rs, ["bearer", "subject", "introspect"]);
  });

  it("a JWT exchanged (RFC 8693) from a JWT before that one was revoked by jti is refused everywhere", async () => {
    const parent = await jwtFor(v.token);
    const child = await postForm("/oauth/token", { grant_type: TOKEN_EXCHANGE, subject_token: parent, subject_token_type: JWT_TOKEN_TYPE });
    expectStatus(child, 200);
    await acceptedAt("exchanged JWT", child.json.access_token, holderV(), rs, ["bearer", "subject", "introspect"]);
    expectStatus(await postForm("/oauth/revoke", { token: parent }, { basic: [v.id, v.token] }), 200);
    await refusedAt("JWT exchanged from a revoked JWT", child.json.access_token, holderV(), rs);
  });
});

describe("JWT: revoked source access token", () => {
  it("JWTs minted from an access token, directly, by client_credentials or by RFC 8693 (and exchanged again), are refused everywhere once it is revoked", async () => {
    const u = await keyedAccount(A.adminToken, A.org.id, `u-${unique("k")}`);
    const direct = await jwtFor(u.token);
    const cc = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [u.id, u.token] });
    expectStatus(cc, 200);
    const again = await postForm("/oauth/token", { grant_type: TOKEN_EXCHANGE, subject_token: direct, subject_token_type: JWT_TOKEN_TYPE });
    expectStatus(again, 200);
    const holder = { orgId: A.org.id, accountId: u.id };
    expectStatus(await call("DELETE", `/api/v1/orgs/${A.org.id}/service-accounts/${u.id}/tokens/${u.tokenId}`, { token: A.adminToken }), 204);
    for (const [label, jwt] of [["exchanged JWT", direct], ["client_credentials JWT", cc.json.access_token], ["re-exchanged JWT", again.json.access_token]] as const) {
      await refusedAt(`${label} of a revoked token`, jwt, holder, rs);
    }
    // The account's key still authenticates it: only what came from the token died.
    const assertion = await sign(u.privateKey, { alg: "ES256", kid: u.kid }, assertionClaims(u.id));
    await acceptedAt("the account's key", assertion, holder, rs, ["assertion"]);
  });

  it("a cross-org JWT (POST /api/v1/auth/authorize) dies with the access token it was authorized with", async () => {
    const member = await call("POST", `/api/v1/orgs/${B.org.id}/service-accounts`, { token: B.adminToken, body: { name: unique("m"), roles: [{ role: "viewer" }], issueToken: true } });
    expectStatus(member, 201);
    const inv = await inviteTo(A.adminToken, A.org.id, member.json.email, "viewer");
    expectStatus(inv, 201);
    expectStatus(await answer(B.adminToken, B.org.id, member.json.id, inv.json.id, "accepted"), 200);
    const forA = await authorizeFor(member.json.token.token, A.org.id);
    expectStatus(forA, 200);
    expect(claimsOf(forA.json.jwt)).toMatchObject({ org_id: A.org.id, source_token_id: member.json.token.id });
    expectStatus(await call("GET", `/api/v1/orgs/${A.org.id}`, { token: forA.json.jwt }), 200);
    expectStatus(await call("DELETE", `/api/v1/orgs/${B.org.id}/service-accounts/${member.json.id}/tokens/${member.json.token.id}`, { token: B.adminToken }), 204);
    await refusedAt("cross-org JWT of a revoked token", forA.json.jwt, { orgId: A.org.id, accountId: member.json.id }, rs);
  });
});

describe("access tokens", () => {
  it("a bad checksum (one character changed, in the body or in the checksum) is refused everywhere", async () => {
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === "A" ? "B" : "A") + s.slice(i + 1);
    for (const i of [TOKEN_PREFIX.length, v.token.length - 10, v.token.length - 1]) {
      const bad = flip(v.token, i);
      expect(isWellFormedAccessToken(bad), bad).toBe(false);
      await refusedAt(`bad checksum at ${i}`, bad, holderV(), rs);
    }
  });

  it("a right checksum over unknown random (built with the documented format) is refused everywhere", async () => {
    const random = Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[b % 62]).join("");
    const body = `${TOKEN_PREFIX}${random}`;
    const forged = body + checksum(body);
    expect(forged).toMatch(/^sat_[0-9A-Za-z]{38}$/);
    expect(isWellFormedAccessToken(forged), "the forged token passes the checksum, so the refusal is the lookup's").toBe(true);
    await refusedAt("unknown well-formed token", forged, holderV(), rs);
  });

  it("a revoked token is refused everywhere", async () => {
    const x = await keyedAccount(A.adminToken, A.org.id, "x-key");
    await acceptedAt("before revoke", x.token, { orgId: A.org.id, accountId: x.id }, rs, ["bearer", "basic"]);
    expectStatus(await call("DELETE", `/api/v1/orgs/${A.org.id}/service-accounts/${x.id}/tokens/${x.tokenId}`, { token: A.adminToken }), 204);
    await refusedAt("revoked token", x.token, { orgId: A.org.id, accountId: x.id }, rs);
  });

  it("an expired token (the clock moved past its expiry) is refused everywhere", async () => {
    const created = await call("POST", `/api/v1/orgs/${A.org.id}/service-accounts`, {
      token: A.adminToken,
      body: { name: unique("short"), roles: [{ role: "viewer" }], issueToken: { expiresInSeconds: 60 } },
    });
    expectStatus(created, 201);
    const holder = { orgId: A.org.id, accountId: created.json.id as string };
    const secret = created.json.token.token as string;
    await acceptedAt("before expiry", secret, holder, rs, ["bearer", "basic", "introspect"]);
    advanceClock(2 * MINUTE_MS);
    await refusedAt("expired token", secret, holder, rs);
  });

  it("a disabled account's token, JWT and key are refused everywhere", async () => {
    const x = await keyedAccount(A.adminToken, A.org.id, "x-key");
    const holder = { orgId: A.org.id, accountId: x.id };
    const jwt = await jwtFor(x.token);
    expectStatus(await call("PATCH", `/api/v1/orgs/${A.org.id}/service-accounts/${x.id}`, { token: A.adminToken, body: { status: "disabled" } }), 200);
    await refusedAt("disabled token", x.token, holder, rs);
    await refusedAt("disabled JWT", jwt, holder, rs);
    await refusedAt("disabled assertion", await sign(x.privateKey, { alg: "ES256", kid: x.kid }, assertionClaims(x.id)), holder, rs);
  });

  it("a deleted account's token, JWT and key are refused everywhere", async () => {
    const x = await keyedAccount(A.adminToken, A.org.id, "x-key");
    const holder = { orgId: A.org.id, accountId: x.id };
    const jwt = await jwtFor(x.token);
    expectStatus(await call("DELETE", `/api/v1/orgs/${A.org.id}/service-accounts/${x.id}`, { token: A.adminToken }), 204);
    await refusedAt("deleted token", x.token, holder, rs);
    await refusedAt("deleted JWT", jwt, holder, rs);
    await refusedAt("deleted assertion", await sign(x.privateKey, { alg: "ES256", kid: x.kid }, assertionClaims(x.id)), holder, rs);
  });

  it("another org's account token on this org's routes: every route of the OpenAPI document is 404; no JWT for this org either", async () => {
    const bViewer = await call("POST", `/api/v1/orgs/${B.org.id}/service-accounts`, { token: B.adminToken, body: { name: unique("bv"), roles: [{ role: "org-admin" }], issueToken: true } });
    expectStatus(bViewer, 201);
    const token = bViewer.json.token.token as string;
    const ras = await call("GET", `/api/v1/orgs/${A.org.id}/service-accounts/${v.id}/role-assignments`, { token: A.adminToken });
    const keys = await call("GET", `/api/v1/orgs/${A.org.id}/service-accounts/${v.id}/keys`, { token: A.adminToken });
    const fed = await call("POST", `/api/v1/orgs/${A.org.id}/service-accounts/${v.id}/federated-credentials`, { token: A.adminToken, body: { name: unique("f"), issuer: "https://gitlab.com", subject: "project_path:a/x:ref_type:branch:ref:main" } });
    expectStatus(fed, 201);
    const prj = await call("POST", `/api/v1/orgs/${A.org.id}/projects`, { token: A.adminToken, body: { slug: unique("p"), name: "P" } });
    const env = await call("POST", `/api/v1/orgs/${A.org.id}/projects/${prj.json.id}/environments`, { token: A.adminToken, body: { slug: unique("e"), name: "E" } });
    const role = await call("POST", `/api/v1/orgs/${A.org.id}/roles`, { token: A.adminToken, body: { name: unique("r"), operations: ["orgs.read"] } });
    const ids: Record<string, string> = {
      org: A.org.id,
      sa: v.id,
      tok: v.tokenId,
      key: keys.json.items[0].id,
      fed: fed.json.id,
      ra: ras.json.items[0].id,
      prj: prj.json.id,
      env: env.json.id,
      role: role.json.id,
      inv: "inv_doesnotmatter00000000000",
      clientId: v.id,
      ...(await webhookWithDelivery(A.adminToken, A.org.id)),
    };
    const before = await snapshotOrg(A.adminToken, A.org.id);
    for (const op of (await apiOperations()).filter((o) => o.params.includes("org"))) {
      const res = await send(op, ids, token, { pem: v.pem, inviteEmail: `nobody-${unique("x")}@example.test` });
      expect(res.status, `${op.method} ${op.template} with org B's token: ${res.text}`).toBe(404);
    }
    // Nor a JWT for org A: the exchange, /oauth/token and /auth/authorize all refuse.
    expectStatus(await call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: token, org: A.org.id } }), 403);
    expectOAuthError(await postForm("/oauth/token", { grant_type: "client_credentials", org: A.org.id }, { basic: [bViewer.json.id, token] }), 400, "invalid_target");
    expectStatus(await authorizeFor(token, A.org.id), 403);
    expect(await snapshotOrg(A.adminToken, A.org.id)).toEqual(before);
    await acceptedAt("v after the walk", v.token, holderV(), rs, ["bearer"]);
  });

  it("a token is never the client_secret of another client_id (basic and post, at every OAuth endpoint)", async () => {
    const bAccount = B.admin.id as string;
    for (const [label, clientId, secret] of [
      ["v's token for w", w.id, v.token],
      ["w's token for v", v.id, w.token],
      ["v's token for B's admin", bAccount, v.token],
      ["B's admin token for v", v.id, B.adminToken],
      ["root's token for v", v.id, root.token],
      ["v's token for root", root.id, v.token],
      ["v's token for an unknown id", "sa_doesnotexist0000000000", v.token],
      ["v's token for an empty id", "", v.token],
    ] as const) {
      for (const path of ["/oauth/token", "/api/m2m/oauth/token", "/oauth/introspect", "/oauth/revoke"]) {
        const params = path.includes("token") ? { grant_type: "client_credentials" } : { token: "not-a-token" };
        const basic = await postForm(path, params, { basic: [clientId, secret] });
        expect(basic.status, `${label} basic at ${path}: ${basic.text}`).toBe(401);
        expect(basic.json?.error, `${label} basic at ${path}`).toBe("invalid_client");
        if (clientId === "") continue;
        const post = await postForm(path, { ...params, client_id: clientId, client_secret: secret });
        expect(post.status, `${label} post at ${path}: ${post.text}`).toBe(401);
        expect(post.json?.error, `${label} post at ${path}`).toBe("invalid_client");
      }
    }
    // Every token still works for its own client.
    for (const [id, secret] of [[v.id, v.token], [w.id, w.token], [bAccount, B.adminToken]] as const) {
      expectStatus(await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [id, secret] }), 200);
    }
  });
});
