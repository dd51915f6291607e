import fc from "fast-check";
import * as jose from "jose";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { generateAccessToken } from "../../src/domain/credentials/access-token.ts";
import { call, expectStatus, platformRoot } from "../helpers.ts";
import {
  checkOAuthError,
  concatBytes,
  deepJson,
  deepJsonText,
  diffSnapshots,
  extraHeaders,
  foreignJwt,
  headerSafe,
  INVALID_UTF8,
  junkQuery,
  keyConfusionJwt,
  MALFORMED_JSON,
  malformedJwt,
  NON_JSON_TYPES,
  oddString,
  pct,
  PropertyViolation,
  send,
  snapshot,
  StateTracker,
  weighted,
  type FuzzRequest,
  type FuzzResponse,
} from "./fuzz-helpers.ts";
import { ACCESS_TOKEN_TYPE, API_AUDIENCE, clientAssertion, formBody, ISSUER, JWT_BEARER, JWT_TOKEN_TYPE, jwtFor, newClient, newKeyClient, TOKEN_EXCHANGE, type AssertionOptions } from "./oauth-helpers.ts";
import { resetIsolateState } from "../../src/domain/shared/isolate-state.ts";

/**
 * Property-based hardening of the OAuth endpoints ("Hardening", bad input): POST /oauth/token and
 * its alias /api/m2m/oauth/token (client_credentials and RFC 8693 token exchange), /oauth/introspect,
 * /oauth/revoke, the exchange POST /api/auth/access-tokens/jwt, and the discovery documents.
 * Client authentication ranges over client_secret_basic, client_secret_post and private_key_jwt,
 * each valid, near-valid (wrong secret, wrong audience, replayed jti...) or malformed (garbage
 * base64, no colon, unicode, bad escapes, JWTs with 2 or 4 segments, alg none, huge headers).
 * For every request: no 5xx; an error is an RFC 6749 body `{error, error_description?}` with
 * `error` from RFC 6749/7009/8693 (the exchange endpoint, part of the management API, answers
 * problem+json); a rejected request leaves D1 as it was.
 *
 * Cases: RUNS (500) generated requests per endpoint for the token endpoint, its alias,
 * introspection, revocation and the exchange, DISCOVERY_RUNS (60) for the discovery documents:
 * 2,560 requests, ~10 s on the idle 2-core machine (~15 s beside other test files). fast-check
 * prints the seed and path of a failure; rerun it with `fc.assert(..., { seed, path })`.
 *
 * Rate limiting: failed client authentications are counted per claimed client id (src/domain/
 * rate-limit.ts); after 20 failures the seeded clients would be refused (429 slow_down) for the
 * rest of the file, so the isolate's blocks are forgotten before every case and a valid client
 * keeps reaching the checks behind authentication. A failing client over the limit still gets
 * 429, which the checks accept only as `slow_down` with Retry-After.
 */
const RUNS = 500;
const DISCOVERY_RUNS = 60;
const TIMEOUT = 120_000;

let root: { id: string; token: string };
/** The client: a viewer account with an access token (= its client_secret). */
let C: { id: string; secret: string; orgId: string };
/** Another client in the same org (its tokens are not C's to revoke). */
let D: { id: string; secret: string };
/** A private_key_jwt client (ES256 key, no access token). */
let K: { id: string; privateKey: CryptoKey; kid: string };
/** A platform client registered for client_secret_basic only. */
let P: { id: string; secret: string };
let otherOrgId: string;
let revokedSecret: string;
let jwtC: string;
let jwtD: string;
/** C's JWTs that /oauth/revoke may revoke (successful revocations are allowed to change state). */
let revocableJwts: string[];
let sampleAssertion: string;
let hostileJwts: string[];

beforeAll(async () => {
  root = await platformRoot();
  const c = await newClient(root.token, { roles: [{ role: "viewer" }] });
  C = { id: c.account.id, secret: c.token, orgId: c.org.id };
  const d = await newClient(root.token, { roles: [{ role: "viewer" }] }, c.org.id);
  D = { id: d.account.id, secret: d.token };
  const k = await newKeyClient(root.token, "ES256", "jwk");
  K = { id: k.clientId, privateKey: k.privateKey, kid: k.kid };
  const p = await call("POST", "/api/service-accounts", { token: root.token, body: { name: "fuzz-platform", permissions: ["orgs.read"], tokenEndpointAuthMethod: "client_secret_basic" } });
  expectStatus(p, 201);
  P = { id: p.json.clientId, secret: p.json.clientSecret };
  const other = await newClient(root.token, { issueToken: false });
  otherOrgId = other.org.id;
  const gone = await newClient(root.token, {}, c.org.id);
  expectStatus(await call("DELETE", `/api/v1/orgs/${c.org.id}/service-accounts/${gone.account.id}/tokens/${gone.tokenId}`, { token: root.token }), 204);
  revokedSecret = gone.token;
  jwtC = await jwtFor(C.secret, { duration_seconds: 3600 });
  jwtD = await jwtFor(D.secret, { duration_seconds: 3600 });
  revocableJwts = [await jwtFor(C.secret), await jwtFor(C.secret)];
  sampleAssertion = await clientAssertion(K.privateKey, K.id, { kid: K.kid });
  const jwks = (await call("GET", "/.well-known/jwks.json")).json.keys as jose.JWK[];
  hostileJwts = [await foreignJwt(jwtC), ...(await Promise.all(jwks.map((key) => keyConfusionJwt(jwtC, key))))];
});

// Forget rate-limit blocks between cases (see the header comment).
beforeEach(() => resetIsolateState("failure-blocks"));

// ---------------------------------------------------------------------------------------------
// Client authentication
// ---------------------------------------------------------------------------------------------

type AssertionVariant =
  | "valid"
  | "wrong-aud"
  | "endpoint-aud"
  | "exp-far"
  | "exp-past"
  | "no-jti"
  | "long-jti"
  | "replayed-jti"
  | "iss-not-sub"
  | "sub-other-client"
  | "unknown-kid"
  | "no-kid"
  | "typ-odd";

type ClientAuth =
  | { kind: "none" }
  | { kind: "header"; value: string; label: string }
  | { kind: "params"; params: Record<string, string>; label: string }
  | { kind: "assertion"; variant: AssertionVariant; type: string | undefined; clientId: string | undefined }
  | { kind: "raw-assertion"; value: string; type: string | undefined }
  | { kind: "basic+post" };

const basicOf = (id: string, secret: string) => `Basic ${btoa(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`)}`;
const binary = (s: string) => String.fromCharCode(...new TextEncoder().encode(s));

function clientAuthArb(): fc.Arbitrary<ClientAuth> {
  const wrongSecrets = [D.secret, revokedSecret, generateAccessToken(), C.secret.slice(0, -1), `${C.secret}x`, "", " ", P.secret];
  const malformedBasic = [
    "Basic",
    "Basic ",
    "Basic !!!",
    "Basic ====",
    `Basic ${btoa("no-colon")}`,
    `Basic ${btoa(`${C.id}:`)}`,
    `Basic ${btoa(`:${C.secret}`)}`,
    `Basic ${btoa(binary("ü🤖:sat_ü"))}`,
    `Basic ${btoa("\xff\xfe:\xfd")}`,
    `Basic ${btoa("%ZZ:%E0%A4%A")}`,
    `Basic ${btoa(`${C.id}:${C.secret}`)}=====`,
    `Basic ${btoa(`${C.id}:${C.secret}`).slice(0, -3)}`,
    `Basic ${"A".repeat(3000)}`,
    `Basic ${"QUFB".repeat(4096)}`,
    `Basic ${btoa(`${C.id}:${C.secret}`)} ${btoa("x:y")}`,
    `Basic\t${btoa(`${C.id}:${C.secret}`)}`,
    `Bearer ${C.secret}`,
    `Digest username="${C.id}"`,
    headerSafe(`Basic ${btoa(`${C.id}:${C.secret}`)}ü`),
  ];
  return weighted<ClientAuth>(
    [1, fc.constant({ kind: "none" })],
    [3, fc.constantFrom(`Basic ${btoa(`${C.id}:${C.secret}`)}`, `basic ${btoa(`${C.id}:${C.secret}`)}`, basicOf(P.id, P.secret)).map((value) => ({ kind: "header", value, label: "valid Basic" }))],
    [2, fc.constantFrom(...wrongSecrets).map((s) => ({ kind: "header", value: basicOf(C.id, s), label: "Basic with a wrong secret" }))],
    [1, oddString.map((s) => ({ kind: "header", value: `Basic ${btoa(binary(`${s}:${s}`))}`, label: "Basic with odd id and secret" }))],
    [2, fc.constantFrom(...malformedBasic).map((value) => ({ kind: "header", value, label: "malformed Basic" }))],
    [2, fc.constant({ kind: "params", params: { client_id: C.id, client_secret: C.secret }, label: "valid client_secret_post" })],
    [
      2,
      fc
        .oneof(
          fc.constantFrom(...wrongSecrets).map((s) => ({ client_id: C.id, client_secret: s })),
          fc.constant({ client_secret: C.secret }),
          fc.constant({ client_id: P.id, client_secret: P.secret }),
          fc.constant({ client_id: "", client_secret: C.secret }),
          fc.tuple(oddString, oddString).map(([id, s]) => ({ client_id: id, client_secret: s })),
          fc.constant({ client_id: "x".repeat(9000), client_secret: C.secret }),
        )
        .map((params) => ({ kind: "params", params, label: "near-valid client_secret_post" })),
    ],
    [
      3,
      fc
        .record({
          variant: fc.constantFrom<AssertionVariant>("valid", "valid", "wrong-aud", "endpoint-aud", "exp-far", "exp-past", "no-jti", "long-jti", "replayed-jti", "iss-not-sub", "sub-other-client", "unknown-kid", "no-kid", "typ-odd"),
          type: weighted([6, fc.constant<string | undefined>(JWT_BEARER)], [1, fc.constantFrom<string | undefined>(undefined, "", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer", `${JWT_BEARER} `)]),
          clientId: weighted([4, fc.constant<string | undefined>(undefined)], [1, fc.constantFrom<string | undefined>(K.id, C.id, "")]),
        })
        .map((a) => ({ kind: "assertion", ...a })),
    ],
    [
      2,
      fc
        .tuple(fc.oneof(malformedJwt(sampleAssertion), fc.constantFrom(...hostileJwts), oddString), weighted([5, fc.constant<string | undefined>(JWT_BEARER)], [1, fc.constant<string | undefined>(undefined)]))
        .map(([value, type]) => ({ kind: "raw-assertion", value, type })),
    ],
    [1, fc.constant({ kind: "basic+post" })],
  );
}

/** Turns a client authentication into headers and form parameters (signing assertions now: each needs a fresh jti). */
async function materializeAuth(auth: ClientAuth, endpoint: string): Promise<{ headers: [string, string][]; params: Record<string, string>; label: string }> {
  switch (auth.kind) {
    case "none":
      return { headers: [], params: {}, label: "no client authentication" };
    case "header":
      return { headers: [["authorization", auth.value]], params: {}, label: auth.label };
    case "params":
      return { headers: [], params: auth.params, label: auth.label };
    case "basic+post":
      return { headers: [["authorization", `Basic ${btoa(`${C.id}:${C.secret}`)}`]], params: { client_id: C.id, client_secret: C.secret }, label: "Basic and client_secret_post at once" };
    case "raw-assertion": {
      const params: Record<string, string> = { client_assertion: auth.value };
      if (auth.type !== undefined) params.client_assertion_type = auth.type;
      return { headers: [], params, label: "malformed client_assertion" };
    }
    case "assertion": {
      const now = Math.floor(Date.now() / 1000);
      const o: AssertionOptions = { kid: K.kid };
      let sub = K.id;
      switch (auth.variant) {
        case "wrong-aud":
          o.aud = "https://evil.test";
          break;
        case "endpoint-aud":
          o.aud = `${ISSUER}${endpoint}`;
          break;
        case "exp-far":
          o.exp = now + 3600;
          break;
        case "exp-past":
          o.exp = now - 3600;
          break;
        case "no-jti":
          o.jti = null;
          break;
        case "long-jti":
          o.jti = "j".repeat(300);
          break;
        case "replayed-jti":
          o.jti = "fuzz-replayed-jti";
          break;
        case "iss-not-sub":
          o.iss = C.id;
          break;
        case "sub-other-client":
          sub = C.id;
          break;
        case "unknown-kid":
          o.kid = "not-a-registered-kid";
          break;
        case "no-kid":
          o.kid = undefined;
          break;
        case "typ-odd":
          o.typ = "at+jwt";
          break;
        case "valid":
          break;
      }
      const params: Record<string, string> = { client_assertion: await clientAssertion(K.privateKey, sub, { ...o, ...(auth.variant === "sub-other-client" ? { iss: C.id } : {}) }) };
      if (auth.type !== undefined) params.client_assertion_type = auth.type;
      if (auth.clientId !== undefined) params.client_id = auth.clientId;
      return { headers: [], params, label: `private_key_jwt (${auth.variant})` };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Form bodies
// ---------------------------------------------------------------------------------------------

type Params = Record<string, string | string[] | undefined>;

/** How the parameters travel: a proper form, or bytes and types an OAuth endpoint must refuse cleanly. */
type Shape =
  | { kind: "form" }
  | { kind: "junk"; suffix: string }
  | { kind: "utf8"; bytes: Uint8Array; inside: boolean }
  | { kind: "huge" }
  | { kind: "type"; contentType: string | undefined }
  | { kind: "json" }
  | { kind: "empty" }
  | { kind: "query-only" }
  | { kind: "method"; method: string };

const shapeArb: fc.Arbitrary<Shape> = weighted<Shape>(
  [30, fc.constant({ kind: "form" })],
  [1, fc.constantFrom("&%ZZ=1", "&=&&", "&a", "&grant_type=%E0%A4%A", "&scope=%", "&%00=%00", "&" + "k=v&".repeat(2000)).map((suffix) => ({ kind: "junk", suffix }))],
  [1, fc.tuple(fc.constantFrom(...INVALID_UTF8), fc.boolean()).map(([bytes, inside]) => ({ kind: "utf8", bytes, inside }))],
  [1, fc.constant({ kind: "huge" })],
  [
    1,
    fc
      .constantFrom<string | undefined>(undefined, "text/plain", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded; charset=utf-16", "APPLICATION/X-WWW-FORM-URLENCODED", "application/x-www-form-urlencodedx", " application/x-www-form-urlencoded")
      .map((contentType) => ({ kind: "type", contentType })),
  ],
  [1, fc.constant({ kind: "json" })],
  [1, fc.constant({ kind: "empty" })],
  [1, fc.constant({ kind: "query-only" })],
  [1, fc.constantFrom("GET", "PUT", "DELETE", "PATCH", "OPTIONS").map((method) => ({ kind: "method", method }))],
);

/** A fuzz request to an OAuth endpoint from parameters, client authentication and a shape. */
function formRequest(path: string, params: Params, auth: { headers: [string, string][]; params: Record<string, string>; label: string }, shape: Shape, headers: [string, string][], query: string, label: string): FuzzRequest {
  const all: Params = { ...params, ...auth.params };
  const text = formBody(all);
  const h: [string, string][] = [...headers, ...auth.headers];
  const form = "application/x-www-form-urlencoded";
  const labels = [label, auth.label, `shape ${shape.kind}`];
  let body: string | Uint8Array | undefined = text;
  let method = "POST";
  let contentType: string | undefined = form;
  let url = path + query;
  switch (shape.kind) {
    case "form":
      break;
    case "junk":
      body = text + shape.suffix;
      break;
    case "utf8": {
      const at = text.indexOf("=") + 1;
      body = shape.inside && at > 0 ? concatBytes(text.slice(0, at), shape.bytes, text.slice(at)) : concatBytes(shape.bytes, "=", shape.bytes, "&", text);
      break;
    }
    case "huge":
      body = `${text}&pad=${"p".repeat(70_000)}`;
      break;
    case "type":
      contentType = shape.contentType;
      break;
    case "json":
      contentType = "application/json";
      body = JSON.stringify(all);
      break;
    case "empty":
      body = "";
      break;
    case "query-only":
      url = `${path}?${text}${query ? `&${query.slice(1)}` : ""}`;
      body = undefined;
      break;
    case "method":
      method = shape.method;
      if (method === "GET") body = undefined;
      break;
  }
  if (contentType !== undefined && body !== undefined) h.push(["content-type", contentType]);
  return { method, path: url, headers: h, body, label: labels.join("; ") };
}

/** OAuth endpoints answer RFC 6749 errors; an unrouted method is the management API's routing problem. */
const oauthDialect = (req: FuzzRequest) => () => (req.method === "POST" ? ("oauth" as const) : ("problem" as const));

const repeatedOr = <T extends string>(arb: fc.Arbitrary<T>): fc.Arbitrary<string | string[]> => weighted<string | string[]>([6, arb], [1, fc.tuple(arb, arb).map(([a, b]) => [a, b])]);

const optional = <T>(arb: fc.Arbitrary<T>, present = 1, absent = 3): fc.Arbitrary<T | undefined> => weighted<T | undefined>([absent, fc.constant(undefined)], [present, arb]);

function subjectTokens(): fc.Arbitrary<string> {
  return weighted(
    [2, fc.constantFrom(C.secret, jwtC, jwtD, K.id, revokedSecret, generateAccessToken(), ...hostileJwts)],
    [2, malformedJwt(jwtC)],
    [1, oddString],
    [1, fc.constant("x".repeat(9000))],
  );
}

/** One parameter set to a hostile value (or removed, when `value` is undefined). */
interface ParamMutation {
  field: string;
  value: string | string[] | undefined;
}

/**
 * Near-valid token requests: a valid client_credentials or token-exchange request, then zero to
 * two parameters broken (so most requests get past the parser and reach the grant's own checks).
 */
function tokenParamsArb(): fc.Arbitrary<Params> {
  const bad: Record<string, fc.Arbitrary<string | string[] | undefined>> = {
    grant_type: fc.oneof(fc.constantFrom(undefined, "", "password", "authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:jwt-bearer", "CLIENT_CREDENTIALS", "client_credentials ", ["client_credentials", "client_credentials"]), oddString),
    scope: fc.oneof(fc.constantFrom("platform.root", "service-accounts.edit", "  ", "a".repeat(9000), "orgs.read orgs.read", "openid", "\u0000", "orgs.read\torgs.read", ["orgs.read", "orgs.read"]), oddString),
    resource: fc.oneof(fc.constantFrom<string | string[]>("https://evil.test", ISSUER, Array(11).fill(API_AUDIENCE), [API_AUDIENCE, "https://evil.test"], "r".repeat(3000), ""), oddString),
    audience: fc.constantFrom<string | string[]>("urn:x", "", [API_AUDIENCE, ISSUER], "a".repeat(9000)),
    org: fc.oneof(fc.constantFrom(C.orgId, otherOrgId, "org_0000000000000000000000", ""), oddString),
    subject_token: fc.oneof(subjectTokens(), fc.constant(undefined)),
    subject_token_type: fc.constantFrom(undefined, JWT_TOKEN_TYPE, ACCESS_TOKEN_TYPE, "urn:ietf:params:oauth:token-type:id_token", "access_token", "", [ACCESS_TOKEN_TYPE, ACCESS_TOKEN_TYPE]),
    requested_token_type: fc.constantFrom(ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, "urn:ietf:params:oauth:token-type:refresh_token", "x"),
    client_id: fc.constantFrom(C.id, K.id, D.id, "", "x".repeat(9000)),
    response_type: fc.constantFrom("code", "token"),
    ["__proto__"]: fc.constant("x"),
  };
  const mutation: fc.Arbitrary<ParamMutation> = fc.constantFrom(...Object.keys(bad)).chain((field) => bad[field]!.map((value) => ({ field, value })));
  const base = fc.oneof(
    fc.record({ grant_type: fc.constant("client_credentials"), scope: optional(fc.constantFrom("service-accounts.read", "orgs.read audit.read")), resource: optional(fc.constant(API_AUDIENCE)) }),
    fc
      .record({
        grant_type: fc.constant(TOKEN_EXCHANGE),
        subject: fc.constantFrom<[string, string]>([C.secret, ACCESS_TOKEN_TYPE], [jwtC, JWT_TOKEN_TYPE], [jwtC, ACCESS_TOKEN_TYPE], [D.secret, ACCESS_TOKEN_TYPE]),
        scope: optional(fc.constant("orgs.read")),
      })
      .map(({ subject: [subject_token, subject_token_type], ...rest }) => ({ ...rest, subject_token, subject_token_type })),
  );
  return fc.tuple(base, fc.array(mutation, { maxLength: 2 })).map(([params, mutations]) => {
    const out: Params = Object.assign(Object.create(null), params);
    for (const m of mutations) out[m.field] = m.value;
    return out;
  });
}

function tokenQueryParamsArb(forRevoke: boolean): fc.Arbitrary<Params> {
  // Never C's own access token, nor P's secret, on revocation: revoking them would (legitimately) end the clients under test.
  const tokens = forRevoke
    ? fc.constantFrom(jwtD, D.secret, revokedSecret, generateAccessToken(), ...revocableJwts, ...hostileJwts)
    : fc.constantFrom(C.secret, D.secret, jwtC, jwtD, revokedSecret, generateAccessToken(), P.secret, ...hostileJwts);
  return fc.record({
    token: weighted<string | string[] | undefined>([3, tokens], [2, malformedJwt(jwtC)], [1, oddString], [1, fc.constantFrom(undefined, "", "x".repeat(9000), [jwtD, jwtD])]),
    token_type_hint: optional(repeatedOr(fc.constantFrom("access_token", "refresh_token", "urn:ietf:params:oauth:token-type:jwt", "", "x"))),
  });
}

async function expectNoStateChangeOrOk(tracker: StateTracker, req: FuzzRequest): Promise<FuzzResponse> {
  return tracker.check(req, oauthDialect(req));
}

/** A 200 from the token endpoint is a token response; anything else about it is checked by the tracker. */
function checkTokenSuccess(req: FuzzRequest, res: FuzzResponse) {
  if (res.status !== 200) return;
  const b = res.json;
  if (typeof b?.access_token !== "string" || b.token_type !== "Bearer" || typeof b.expires_in !== "number" || !/no-store/.test(res.headers.get("cache-control") ?? "")) {
    throw new PropertyViolation("a 200 from the token endpoint is not an RFC 6749 token response", req, res);
  }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

describe("the token endpoint", () => {
  for (const path of ["/oauth/token", "/api/m2m/oauth/token"]) {
    it(`POST ${path}: client_credentials and token exchange`, async () => {
      const tracker = new StateTracker();
      await tracker.reset();
      const arb = fc.record({ params: tokenParamsArb(), auth: clientAuthArb(), shape: shapeArb, headers: extraHeaders, query: weighted([5, fc.constant("")], [1, junkQuery]) });
      await fc.assert(
        fc.asyncProperty(arb, async ({ params, auth, shape, headers, query }) => {
          resetIsolateState("failure-blocks");
          const req = formRequest(path, params, await materializeAuth(auth, path), shape, headers, query, "token");
          checkTokenSuccess(req, await expectNoStateChangeOrOk(tracker, req));
        }),
        { numRuns: RUNS },
      );
      expect(tracker.rejected, `rejected ${tracker.rejected}, accepted ${tracker.accepted}`).toBeGreaterThan(RUNS / 2);
      expect(tracker.accepted, "some generated requests should be valid").toBeGreaterThan(0);
    }, TIMEOUT);
  }
});

describe("introspection and revocation", () => {
  it("POST /oauth/introspect", async () => {
    const tracker = new StateTracker();
    await tracker.reset();
    const arb = fc.record({ params: tokenQueryParamsArb(false), auth: clientAuthArb(), shape: shapeArb, headers: extraHeaders });
    await fc.assert(
      fc.asyncProperty(arb, async ({ params, auth, shape, headers }) => {
        resetIsolateState("failure-blocks");
        const req = formRequest("/oauth/introspect", params, await materializeAuth(auth, "/oauth/introspect"), shape, headers, "", "introspect");
        const res = await expectNoStateChangeOrOk(tracker, req);
        // RFC 7662 §2.2: an inactive token is exactly {active: false}.
        if (res.status === 200 && (typeof res.json?.active !== "boolean" || (res.json.active === false && Object.keys(res.json).length !== 1))) {
          throw new PropertyViolation("introspection answer is not {active: bool, ...} / exactly {active: false}", req, res);
        }
      }),
      { numRuns: RUNS },
    );
    expect(tracker.rejected).toBeGreaterThan(RUNS / 4);
  }, TIMEOUT);

  it("POST /oauth/revoke", async () => {
    const tracker = new StateTracker();
    await tracker.reset();
    const arb = fc.record({ params: tokenQueryParamsArb(true), auth: clientAuthArb(), shape: shapeArb, headers: extraHeaders });
    await fc.assert(
      fc.asyncProperty(arb, async ({ params, auth, shape, headers }) => {
        resetIsolateState("failure-blocks");
        const req = formRequest("/oauth/revoke", params, await materializeAuth(auth, "/oauth/revoke"), shape, headers, "", "revoke");
        const res = await expectNoStateChangeOrOk(tracker, req);
        if (res.status === 200 && res.text !== "") throw new PropertyViolation("RFC 7009: a revocation answers 200 with an empty body", req, res);
      }),
      { numRuns: RUNS },
    );
    expect(tracker.rejected).toBeGreaterThan(RUNS / 4);
    // The client under test is still alive: revocation never touched C's own access token.
    expectStatus(await call("GET", `/api/v1/orgs/${C.orgId}`, { token: C.secret }), 200);
  }, TIMEOUT);
});

describe("the token exchange (management API, problem+json)", () => {
  it("POST /api/auth/access-tokens/jwt", async () => {
    const tracker = new StateTracker();
    await tracker.reset();
    // Near-valid exchange bodies: a valid one, then zero to two members broken (JSON text values, or removed).
    const good = { access_token: JSON.stringify(C.secret), duration_seconds: "60", scope: '"service-accounts.read"' };
    const bad: Record<string, string[]> = {
      access_token: [D.secret, revokedSecret, jwtC, "sat_", "", "x".repeat(300), generateAccessToken(), ...hostileJwts].map((v) => JSON.stringify(v)).concat(["null", "1", "[]"]),
      duration_seconds: ["0", "-1", "3601", "86400", "1.5", '"60"', "null", "1e309", "-0", "9007199254740993", "[]", "{}"],
      scope: ['"platform.root"', '"service-accounts.edit"', JSON.stringify("s ".repeat(1500)), "1", '["orgs.read"]', '"\\ud800"', '"orgs.read  orgs.read"'],
      org: [JSON.stringify(otherOrgId), JSON.stringify(C.orgId), '""', '"org_0000000000000000000000"', JSON.stringify("o".repeat(101)), "null"],
      unexpected: ['"x"', "1", "{}"],
    };
    const member = fc.constantFrom(...Object.keys(bad)).chain((field) =>
      weighted<[string, string | undefined]>(
        [4, fc.constantFrom(...bad[field]!).map((v): [string, string | undefined] => [field, v])],
        [1, fc.oneof(malformedJwt(jwtC), oddString).map((v): [string, string | undefined] => [field, JSON.stringify(v)])],
        [1, fc.constant<[string, string | undefined]>([field, undefined])],
      ),
    );
    const bodyArb = fc.record({
      fields: fc.tuple(fc.record({ duration: fc.boolean(), scope: fc.boolean() }), fc.array(member, { maxLength: 2 })).map(([keep, mutations]) => {
        const fields: Record<string, string | undefined> = { access_token: good.access_token };
        if (keep.duration) fields.duration_seconds = good.duration_seconds;
        if (keep.scope) fields.scope = good.scope;
        for (const [k, v] of mutations) fields[k] = v;
        return fields;
      }),
      whole: weighted<{ body?: string | Uint8Array; contentType?: string; label: string } | null>(
        [10, fc.constant(null)],
        [1, fc.constantFrom(...MALFORMED_JSON).map((body) => ({ body, contentType: "application/json", label: "malformed JSON" }))],
        [1, deepJsonText.map((body) => ({ body, contentType: "application/json", label: "deep JSON" }))],
        [1, fc.constant({ body: `{"access_token":${deepJson(10_000, "array")}}`, contentType: "application/json", label: "10k-deep access_token" })],
        [1, fc.constantFrom(...INVALID_UTF8).map((b) => ({ body: concatBytes('{"access_token":"', b, '"}'), contentType: "application/json", label: "invalid UTF-8" }))],
        [1, fc.constantFrom(...NON_JSON_TYPES).map((contentType) => ({ body: JSON.stringify({ access_token: C.secret }), contentType, label: `content-type ${contentType}` }))],
        [1, fc.constantFrom<{ body?: string; contentType?: string; label: string }>({ label: "no body" }, { body: "", contentType: "application/json", label: "empty body" }, { body: JSON.stringify({ access_token: C.secret, pad: "p".repeat(70_000) }), contentType: "application/json", label: "over 64 KiB" })],
      ),
      headers: extraHeaders,
      query: weighted([5, fc.constant("")], [1, junkQuery]),
      bearer: optional(fc.constantFrom(`Bearer ${C.secret}`, `Bearer ${jwtC}`, "Bearer x", `Basic ${btoa(`${C.id}:${C.secret}`)}`), 1, 5),
    });
    await fc.assert(
      fc.asyncProperty(bodyArb, async ({ fields, whole, headers, query, bearer }) => {
        resetIsolateState("failure-blocks");
        const members = Object.entries(fields)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => `${JSON.stringify(k)}:${v}`);
        const h: [string, string][] = [...headers];
        if (bearer) h.push(["authorization", headerSafe(bearer)]);
        const body = whole ? whole.body : `{${members.join(",")}}`;
        const contentType = whole ? whole.contentType : "application/json";
        if (contentType !== undefined && body !== undefined) h.push(["content-type", contentType]);
        const req: FuzzRequest = { method: "POST", path: `/api/auth/access-tokens/jwt${query}`, headers: h, body, label: whole?.label ?? "fields" };
        const res = await tracker.check(req, () => "problem");
        if (res.status === 200 && (typeof res.json?.jwt !== "string" || Object.keys(res.json).length !== 1)) throw new PropertyViolation("a 200 exchange is not exactly {jwt}", req, res);
      }),
      { numRuns: RUNS },
    );
    expect(tracker.rejected).toBeGreaterThan(RUNS / 2);
    expect(tracker.accepted, "some generated exchanges should be valid").toBeGreaterThan(0);
  }, TIMEOUT);
});

describe("discovery", () => {
  it("GET /.well-known/oauth-authorization-server, /.well-known/openid-configuration and /.well-known/jwks.json answer junk queries and headers; other methods are routing problems", async () => {
    const tracker = new StateTracker();
    await tracker.reset();
    const arb = fc.record({
      path: fc.constantFrom("/.well-known/oauth-authorization-server", "/.well-known/jwks.json", "/.well-known/openid-configuration", "/.well-known/", "/.well-known/jwks.json/x", `/.well-known/${pct("jwks.json\u0000")}`),
      method: weighted([4, fc.constant("GET")], [1, fc.constantFrom("POST", "PUT", "DELETE", "PATCH", "OPTIONS")]),
      query: junkQuery,
      headers: extraHeaders,
      body: optional(fc.constantFrom("{}", "grant_type=client_credentials", "x".repeat(70_000)), 1, 1),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ path, method, query, headers, body }) => {
        const withBody = method !== "GET" && body !== undefined;
        const req: FuzzRequest = { method, path: path + query, headers: [...headers, ...(withBody ? ([["content-type", "application/json"]] as [string, string][]) : [])], body: withBody ? body : undefined };
        const res = await tracker.check(req, () => "problem");
        const known = ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/.well-known/jwks.json"].includes(path);
        if (method === "GET" && known && (res.status !== 200 || typeof res.json !== "object")) throw new PropertyViolation("a discovery document is not 200 JSON", req, res);
      }),
      { numRuns: DISCOVERY_RUNS },
    );
  }, TIMEOUT);
});

describe("regressions found by these properties", () => {
  /**
   * RFC 6749 §5.2: error_description stays within %x20-21 / %x23-5B / %x5D-7E. The token endpoint
   * quotes the refused scope or audience; what the client sent is now reduced to that set.
   */
  const viaBasic = async (params: Params, error: string) => {
    resetIsolateState("failure-blocks");
    const auth = await materializeAuth({ kind: "header", value: `Basic ${btoa(`${C.id}:${C.secret}`)}`, label: "valid Basic" }, "/oauth/token");
    const req = formRequest("/oauth/token", { grant_type: "client_credentials", ...params }, auth, { kind: "form" }, [], "", "regression");
    const res = await send(req);
    expect(res.status, res.text).toBe(400);
    expect(res.json.error).toBe(error);
    checkOAuthError(req, res);
  };
  it("an unknown scope is not echoed raw into error_description (scope=\\u0000 \" \\ é)", () => viaBasic({ scope: 'a\u0000 b"c\\d é' }, "invalid_scope"));
  it("a refused audience is not echoed raw into error_description (resource=\\u0000)", () => viaBasic({ resource: "\u0000" }, "invalid_target"));
});

describe("the properties can fail", () => {
  it("a successful revocation changes D1 (audit), so the snapshot would see a rejected one that did", async () => {
    const jwt = await jwtFor(C.secret);
    const before = await snapshot();
    const req = formRequest("/oauth/revoke", { token: jwt }, await materializeAuth({ kind: "header", value: `Basic ${btoa(`${C.id}:${C.secret}`)}`, label: "valid Basic" }, "/oauth/revoke"), { kind: "form" }, [], "", "sanity");
    const tracker = new StateTracker();
    await tracker.reset();
    const res = await tracker.check(req, oauthDialect(req));
    expect(res.status, res.text).toBe(200);
    const diff = diffSnapshots(before, await snapshot());
    expect(diff.tables, diff.detail).toEqual(["audit_events"]);
  });

  it("the RFC 6749 check refuses a problem+json body and an error outside the registries", () => {
    const req: FuzzRequest = { method: "POST", path: "/oauth/token", headers: [["authorization", "Basic eDp5"]] };
    const res = (status: number, body: unknown, headers: Record<string, string> = {}): FuzzResponse => ({
      status,
      headers: new Headers({ "content-type": "application/json", "cache-control": "no-store", ...headers }),
      text: JSON.stringify(body),
      json: body,
    });
    expect(() => checkOAuthError(req, res(400, { error: "invalid_grant", error_description: "x" }))).not.toThrow();
    expect(() => checkOAuthError(req, res(400, { error: "unauthenticated" }))).toThrow(PropertyViolation);
    expect(() => checkOAuthError(req, res(401, { error: "invalid_client" }))).toThrow(/WWW-Authenticate: Basic/);
    expect(() => checkOAuthError(req, res(429, { error: "slow_down" }))).toThrow(/Retry-After/);
    expect(() => checkOAuthError(req, res(429, { error: "slow_down" }, { "retry-after": "60" }))).not.toThrow();
    expect(() => checkOAuthError(req, res(400, { error: "invalid_request", error_description: 'say "hi"' }))).toThrow(/error_description/);
  });
});
