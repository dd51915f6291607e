import { env, exports } from "cloudflare:workers";
import fc from "fast-check";
import * as jose from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { BASE, call, expectStatus, orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import {
  checkOAuthError,
  checkProblem,
  concatBytes,
  deepJson,
  deepJsonText,
  diffSnapshots,
  extraHeaders,
  foreignJwt,
  headerSafe,
  hostileKeys,
  INVALID_UTF8,
  JSON_LIKE_TYPES,
  junkQuery,
  keyConfusionJwt,
  MALFORMED_JSON,
  malformedAuthorizations,
  NON_JSON_TYPES,
  oddString,
  pct,
  PropertyViolation,
  send,
  snapshot,
  StateTracker,
  weighted,
  wrongJsonValue,
  type FuzzRequest,
  type HostileKey,
} from "./fuzz-helpers.ts";

/**
 * Property-based hardening of the management API ("Hardening", bad input). Every operation of the
 * OpenAPI document served at test time gets its own property, so a new route is covered without
 * touching this file; path parameters are real ids of a seeded org (or garbage, or ids of other
 * kinds and orgs), bodies are valid examples mutated into near-valid ones (or schema-valid bodies
 * the business rules must refuse, or malformed public keys), credentials range from valid to
 * malformed. For every generated request: no 5xx; errors are the documented problem+json; a
 * rejected request leaves D1 exactly as it was (see EXCLUDED_* in fuzz-helpers). A guard keeps
 * privileged writes with a possibly valid body off the seeded fixtures (one id made missing), so
 * the state stays small and the fixtures stay in place for the next cases.
 *
 * Cases: RUNS (100) generated requests per operation of the document (57 operations today:
 * 5,700), ROUTING_RUNS (150) for wrong methods and unknown paths, PUBLIC_RUNS (60) for /healthz,
 * /openapi.json and /docs, plus the 38 hostile public keys sent once each: about 5,950 requests,
 * ~30 s on the idle 2-core machine (~4 ms a request, D1 snapshot included; ~45 s when other test
 * files run beside it). fast-check prints the seed and path of a failure; rerun it with
 * `fc.assert(..., { seed, path })`.
 */
const RUNS = 100;
const ROUTING_RUNS = 150;
const PUBLIC_RUNS = 60;
const TIMEOUT = 120_000;

// The document is read before the tests are collected, so every operation it lists gets a test.
const docRes = await exports.default.fetch(new Request(`${BASE}/openapi.json`));
const doc = (await docRes.json()) as { paths: Record<string, Record<string, any>>; components?: { schemas?: Record<string, any> } };
const HTTP_METHODS = ["get", "post", "put", "patch", "delete"];

interface Operation {
  method: string;
  path: string;
  op: any;
  params: string[];
  query: any[];
  /** The resolved JSON schema of the body, if the operation takes one. */
  body: any | undefined;
  bodyRequired: boolean;
}

const resolve = (schema: any): any => {
  if (schema && typeof schema.$ref === "string") {
    const name = schema.$ref.split("/").pop();
    return resolve(doc.components?.schemas?.[name]);
  }
  return schema;
};

/**
 * The management API's paths. The OAuth endpoints and discovery documents are in the document
 * too, but they answer RFC 6749 errors, not problem+json: fuzz-oauth.test.ts has their properties.
 */
const isOAuthSurface = (path: string) => path.startsWith("/oauth/") || path.startsWith("/api/m2m/oauth/") || path.startsWith("/.well-known/");
const managementPaths = Object.fromEntries(Object.entries(doc.paths).filter(([path]) => !isOAuthSurface(path)));

/**
 * Operations that end the credential calling them: fuzzed here they would revoke the fixtures'
 * tokens. DELETE /api/v1/tokens/current has its junk-input property with throwaway tokens in
 * self-revocation.test.ts.
 */
const SELF_ENDING = new Set(["DELETE /api/v1/tokens/current"]);

const operations: Operation[] = Object.entries(managementPaths).flatMap(([path, methods]) =>
  Object.entries(methods)
    .filter(([m]) => HTTP_METHODS.includes(m) && !SELF_ENDING.has(`${m.toUpperCase()} ${path}`))
    .map(([m, op]) => ({
      method: m.toUpperCase(),
      path,
      op,
      params: [...path.matchAll(/\{([^}]+)\}/g)].map((x) => x[1]!),
      query: (op.parameters ?? []).filter((p: any) => p.in === "query"),
      body: op.requestBody ? resolve(op.requestBody.content?.["application/json"]?.schema) : undefined,
      bodyRequired: op.requestBody?.required === true,
    })),
);

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

interface Auth {
  label: string;
  header?: string;
  /** May authorize writes (the guard below keeps such writes from succeeding on real fixtures). */
  privileged: boolean;
}

let root: { id: string; token: string };
let A: Awaited<ReturnType<typeof orgWithAdmin>>;
let B: Awaited<ReturnType<typeof orgWithAdmin>>;
let bindings: { A: Record<string, string[]>; B: Record<string, string[]> };
let crossIds: string[];
let examples: Record<string, unknown>;
let auths: fc.Arbitrary<Auth>;
let keys: HostileKey[];
/**
 * Bodies that pass the schema but that the business rules must refuse (duplicates, unassignable or
 * unknown roles, a role list with one bad entry, a patch that renames onto a taken name while
 * disabling...): sent with real ids and privileged callers, they reach the services, where a
 * partial write would show. Each must be rejected (a 2xx breaks the property).
 */
let semantic: Record<string, [string, unknown, string[]?][]>;
/** Who a semantic rule binds by default (the rules are written for org A's real ids). */
const ORG_A_WRITERS = ["root", "org A admin", "org A admin JWT"];

async function created(method: string, path: string, token: string, body?: unknown) {
  const res = await call(method, path, { token, body });
  expect(res.status, `${method} ${path}: ${res.text}`).toBeLessThan(300);
  return res.json;
}

beforeAll(async () => {
  root = await platformRoot();
  // Bootstrap once, so the real secret is a near-valid credential (409) from then on.
  const boot = await call("POST", "/api/v1/bootstrap", { token: env.BOOTSTRAP_SECRET! });
  expect([201, 409], boot.text).toContain(boot.status);
  A = await orgWithAdmin(root.token);
  B = await orgWithAdmin(root.token);
  // The example account edit below sets a downstream scope: org A declares it first (issue 23).
  expectStatus(await call("PATCH", `/api/v1/orgs/${A.org.id}`, { token: A.adminToken, body: { policy: { scopes: ["custom:x"] } } }), 200);
  const o = A.org.id;
  const viewer = await created("POST", `/api/v1/orgs/${o}/service-accounts`, A.adminToken, { name: "viewer-bot", roles: [{ role: "viewer" }], issueToken: true });
  const target = await created("POST", `/api/v1/orgs/${o}/service-accounts`, A.adminToken, { name: "target-bot", roles: [{ role: "viewer" }], issueToken: true });
  const sa = `/api/v1/orgs/${o}/service-accounts/${target.id}`;
  const prj = await created("POST", `/api/v1/orgs/${o}/projects`, A.adminToken, { slug: "fuzz-prj", name: "Fuzz project" });
  const envRow = await created("POST", `/api/v1/orgs/${o}/projects/${prj.id}/environments`, A.adminToken, { slug: "fuzz-env", name: "Fuzz env" });
  const { publicKey } = await jose.generateKeyPair("ES256", { extractable: true });
  const pem = await jose.exportSPKI(publicKey);
  const key = await created("POST", `${sa}/keys`, A.adminToken, { publicKey: pem, name: "fuzz-key" });
  const fed = await created("POST", `${sa}/federated-credentials`, A.adminToken, { name: "fuzz-fed", issuer: "https://gitlab.com", subject: "project_path:acme/x:ref_type:branch:ref:main" });
  const ras = await created("GET", `${sa}/role-assignments`, A.adminToken);
  const role = await created("POST", `/api/v1/orgs/${o}/roles`, A.adminToken, { name: "fuzz-role", operations: ["service-accounts.read"] });
  const invitee = await created("POST", `/api/v1/orgs/${B.org.id}/service-accounts`, B.adminToken, { name: "invitee-bot" });
  const inv = await created("POST", `/api/v1/orgs/${o}/invitations`, A.adminToken, { email: invitee.email, role: "viewer" });
  const client = await created("POST", "/api/service-accounts", root.token, { name: "fuzz-client", permissions: [], tokenEndpointAuthMethod: "client_secret_basic" });
  // A revoked token (a near-valid credential) and a valid JWT of the admin.
  const gone = await created("POST", `/api/v1/orgs/${o}/service-accounts`, A.adminToken, { name: "revoked-bot", issueToken: true });
  expectStatus(await call("DELETE", `/api/v1/orgs/${o}/service-accounts/${gone.id}/tokens/${gone.token.id}`, { token: A.adminToken }), 204);
  const adminJwt = (await created("POST", "/api/auth/access-tokens/jwt", "", { access_token: A.adminToken, duration_seconds: 3600 })).jwt as string;
  const jwks = (await created("GET", "/.well-known/jwks.json", "")).keys as jose.JWK[];

  bindings = {
    A: {
      org: [A.org.id, A.org.slug],
      prj: [prj.id, prj.slug],
      env: [envRow.id, envRow.slug],
      sa: [target.id],
      tok: [target.token.id],
      key: [key.id],
      fed: [fed.id],
      ra: [ras.items[0].id],
      role: [role.id],
      inv: [inv.id],
      clientId: [client.clientId],
    },
    // The coherent binding of the invitee side: PATCH /orgs/B/service-accounts/{invitee}/invitations/{inv}.
    B: { org: [B.org.id], sa: [invitee.id], inv: [inv.id] },
  };
  crossIds = [B.org.id, prj.id, envRow.id, target.id, invitee.id, A.admin.id, viewer.id, root.id, target.token.id, key.id, fed.id, ras.items[0].id, role.id, "role_viewer", "viewer", "org-owner", inv.id, client.clientId];
  examples = {
    "POST /api/auth/access-tokens/jwt": { access_token: viewer.token.token, duration_seconds: 60, scope: "service-accounts.read" },
    "POST /api/v1/admin/signing-keys/rotate": { activateInSeconds: 300 },
    "POST /api/v1/admin/jobs/run": { jobs: ["purge"] },
    "POST /api/v1/orgs": { slug: unique("fz"), name: "Fuzz org", policy: { maxActiveTokensPerAccount: 2 } },
    "PATCH /api/v1/orgs/{org}": { name: "Renamed", policy: { maxTokenLifetimeDays: 30 } },
    "POST /api/v1/orgs/{org}/projects": { slug: unique("p"), name: "P" },
    "POST /api/v1/orgs/{org}/projects/{prj}/environments": { slug: unique("e"), name: "E" },
    "POST /api/v1/orgs/{org}/service-accounts": { name: unique("sa"), displayName: "Bot", groups: ["ci"], daysValid: 30, roles: [{ role: "viewer" }], issueToken: true },
    "PATCH /api/v1/orgs/{org}/service-accounts/{sa}": { displayName: "Target", groups: ["ops"], allowedScopes: ["custom:x"] },
    "POST /api/v1/orgs/{org}/service-accounts/{sa}/role-assignments": { role: "fuzz-role", scope: { type: "project", id: prj.id } },
    "POST /api/v1/orgs/{org}/service-accounts/{sa}/tokens": { name: "second", expiresInSeconds: 3600 },
    "POST /api/v1/orgs/{org}/service-accounts/{sa}/tokens/{tok}/regenerate": { graceSeconds: 60 },
    "POST /api/v1/orgs/{org}/service-accounts/{sa}/keys": { publicKey: pem, alg: "ES256", kid: "fuzz-kid", name: "k2" },
    "POST /api/v1/orgs/{org}/service-accounts/{sa}/federated-credentials": { name: "fuzz-fed-2", issuer: "https://token.actions.githubusercontent.com", claims: { repository: "acme/x" }, maxTokenAgeSeconds: 600 },
    "PATCH /api/v1/orgs/{org}/service-accounts/{sa}/federated-credentials/{fed}": { description: "edited", enabled: false },
    "POST /api/v1/orgs/{org}/roles": { name: "fuzz-role-2", description: "d", operations: ["service-accounts.read"], assignableToServiceAccounts: true },
    "PATCH /api/v1/orgs/{org}/roles/{role}": { description: "edited", operations: ["service-accounts.read", "orgs.read"] },
    "POST /api/v1/orgs/{org}/invitations": { email: invitee.email, role: "viewer", scope: { type: "project", id: prj.id } },
    "PATCH /api/v1/orgs/{org}/service-accounts/{sa}/invitations/{inv}": { state: "declined" },
    "POST /api/v1/auth/authorize": { org: A.org.id },
    "POST /api/service-accounts": { name: unique("pc"), permissions: ["orgs.read"], tokenEndpointAuthMethod: "client_secret_basic" },
  };

  semantic = {
    "POST /api/auth/access-tokens/jwt": [
      ["duration over the maximum", { access_token: viewer.token.token, duration_seconds: 3601 }, ["*"]],
      ["scope beyond the account", { access_token: viewer.token.token, scope: "platform.root" }, ["*"]],
      ["org without a role", { access_token: viewer.token.token, org: B.org.id }, ["*"]],
    ],
    "POST /api/v1/orgs": [["slug taken", { slug: A.org.slug, name: "Dup" }]],
    "POST /api/v1/orgs/{org}/projects": [["slug taken", { slug: "fuzz-prj", name: "Dup" }]],
    "POST /api/v1/orgs/{org}/projects/{prj}/environments": [["slug taken", { slug: "fuzz-env", name: "Dup" }]],
    "POST /api/v1/orgs/{org}/service-accounts": [
      ["name taken", { name: "target-bot" }],
      ["email taken", { name: unique("sa"), email: target.email }],
      ["org-owner role", { name: unique("sa"), roles: [{ role: "org-owner" }], issueToken: true }],
      ["one unknown role among good ones", { name: unique("sa"), roles: [{ role: "viewer" }, { role: "no-such-role" }], issueToken: true }],
      ["role at a missing project", { name: unique("sa"), roles: [{ role: "viewer", scope: { type: "project", id: "prj_0000000000000000000000" } }] }],
      ["malformed CIDR", { name: unique("sa"), allowedCidrs: ["10.0.0.0/33"], issueToken: true }],
      ["validity in the past", { name: unique("sa"), expiresAt: "2001-01-01T00:00:00Z" }],
    ],
    "PATCH /api/v1/orgs/{org}/service-accounts/{sa}": [
      ["rename onto a taken name while disabling", { name: "viewer-bot", status: "disabled" }],
      ["malformed CIDR with a valid rename", { displayName: "changed", allowedCidrs: ["not-a-cidr"] }],
      ["validity in the past", { expiresAt: "2001-01-01T00:00:00Z", displayName: "changed" }],
    ],
    "POST /api/v1/orgs/{org}/service-accounts/{sa}/role-assignments": [
      ["org-owner", { role: "org-owner" }],
      ["already assigned", { role: "viewer" }],
      ["unknown role", { role: "no-such-role" }],
      ["environment id as a project", { role: "viewer", scope: { type: "project", id: envRow.id } }],
      ["another org's project", { role: "viewer", scope: { type: "project", id: "prj_0000000000000000000000" } }],
    ],
    "POST /api/v1/orgs/{org}/service-accounts/{sa}/tokens": [["over the active-token limit", { name: "one-too-many" }]],
    "POST /api/v1/orgs/{org}/service-accounts/{sa}/keys": [["the same key again", { publicKey: pem }]],
    "POST /api/v1/orgs/{org}/service-accounts/{sa}/federated-credentials": [
      ["name taken", { name: "fuzz-fed", issuer: "https://gitlab.com", subject: "x" }],
      ["no condition", { name: unique("f"), issuer: "https://gitlab.com" }],
      ["issuer not allowed", { name: unique("f"), issuer: "https://evil.example", subject: "x" }],
      ["a star-only pattern", { name: unique("f"), issuer: "https://gitlab.com", claims: { project_path: "**" } }],
      ["a condition on aud", { name: unique("f"), issuer: "https://gitlab.com", claims: { aud: "x" } }],
    ],
    "PATCH /api/v1/orgs/{org}/service-accounts/{sa}/federated-credentials/{fed}": [
      ["dropping the last condition while enabling", { subject: null, enabled: true }],
      ["issuer not allowed with a rename", { name: "renamed", issuer: "https://evil.example" }],
    ],
    "POST /api/v1/orgs/{org}/roles": [
      ["name taken", { name: "fuzz-role", operations: ["orgs.read"] }],
      ["unknown operation", { name: unique("r"), operations: ["no.such.operation"] }],
      ["platform operation", { name: unique("r"), operations: ["platform.root"] }],
    ],
    "PATCH /api/v1/orgs/{org}/roles/{role}": [["unknown operation", { operations: ["orgs.read", "no.such.operation"] }]],
    "POST /api/v1/orgs/{org}/invitations": [
      ["org-owner", { email: invitee.email, role: "org-owner" }],
      ["unknown role", { email: invitee.email, role: "no-such-role" }],
    ],
    "POST /api/v1/auth/authorize": [["org without an accepted role", { org: B.org.id }, ["org A admin", "org A admin JWT", "org A viewer"]]],
    "POST /api/service-accounts": [["private_key_jwt without a key", { name: unique("pc"), permissions: [], tokenEndpointAuthMethod: "private_key_jwt" }]],
  };
  keys = await hostileKeys();
  const malformed = fc.oneof(
    malformedAuthorizations(A.adminToken, adminJwt),
    fc.constantFrom(await foreignJwt(adminJwt), ...(await Promise.all(jwks.map((k) => keyConfusionJwt(adminJwt, k))))).map((j) => `Bearer ${j}`),
  );
  auths = weighted<Auth>(
    [2, fc.constant({ label: "root", header: `Bearer ${root.token}`, privileged: true })],
    [2, fc.constant({ label: "org A admin", header: `Bearer ${A.adminToken}`, privileged: true })],
    [1, fc.constant({ label: "org A admin JWT", header: `Bearer ${adminJwt}`, privileged: true })],
    [1, fc.constant({ label: "org B admin", header: `Bearer ${B.adminToken}`, privileged: true })],
    [1, fc.constant({ label: "org A viewer", header: `Bearer ${viewer.token.token}`, privileged: false })],
    [1, fc.constantFrom<Auth>({ label: "none", privileged: false }, { label: "revoked token", header: `Bearer ${gone.token.token}`, privileged: false }, { label: "bootstrap secret", header: `Bearer ${env.BOOTSTRAP_SECRET}`, privileged: false })],
    [2, malformed.map((header) => ({ label: "malformed", header: headerSafe(header), privileged: false }))],
  );
});

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

type ParamPick = { kind: "real"; index: number } | { kind: "cross" | "garbage"; value: string };

const GARBAGE_PARAMS = ["%00", "%ZZ", "%E0%A4%A", "..%2F..%2Fetc", "%2F", "a%2Fb", "%F0%9F%A4%96", "%20", "-1", "0", "null", "x".repeat(5000), "sa_0000000000000000000000", "org_0000000000000000000000", "prj_0", "tok_%27%20or%201%3D1", "key_", "ra_x", "role_", "inv_zz", "%252F"];

const paramArb: fc.Arbitrary<ParamPick> = weighted<ParamPick>(
  [6, fc.nat({ max: 3 }).map((index) => ({ kind: "real", index }))],
  [1, fc.constant(null).chain(() => fc.constantFrom(...crossIds)).map((value) => ({ kind: "cross", value }))],
  [2, fc.oneof(fc.constantFrom(...GARBAGE_PARAMS), oddString.filter((s) => s.length > 0).map(pct)).map((value) => ({ kind: "garbage", value }))],
);

interface BodyCase {
  body?: string | Uint8Array;
  contentType?: string;
  /** Certainly refused by validation (so even a privileged caller is rejected). */
  invalid: boolean;
  /** Must be refused whoever sends it (a private key as public key...): a 2xx breaks the property. */
  mustReject?: boolean;
  /**
   * A semantic rule (valid schema, refused by the business rules) holds only with org A's ids
   * (binding A) and these callers ("*": any); elsewhere the body is merely valid.
   */
  semanticFor?: string[];
  label: string;
}

const jsonType = (text: string): string => {
  try {
    const v = JSON.parse(text);
    if (v === null) return "null";
    if (Array.isArray(v)) return "array";
    if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
    return typeof v;
  } catch {
    return "invalid";
  }
};

/** The JSON types a property schema admits ("integer" also admits "number" only if declared). */
function admitted(schema: any): Set<string> {
  const s = resolve(schema) ?? {};
  if (Array.isArray(s.anyOf)) return new Set(s.anyOf.flatMap((x: any) => [...admitted(x)]));
  const types: string[] = Array.isArray(s.type) ? s.type : s.type ? [s.type] : ["string", "number", "integer", "boolean", "null", "array", "object"];
  return new Set(types.flatMap((t) => (t === "number" ? ["number", "integer"] : [t])));
}

/** A value that breaks one constraint of a property schema (as JSON text), if there is one to break. */
function outOfRange(schema: any): string[] {
  const s = resolve(schema) ?? {};
  const out: string[] = [];
  if (s.maxLength !== undefined) out.push(JSON.stringify("y".repeat(s.maxLength + 1)));
  if (s.minLength > 0) out.push('""');
  if (s.maximum !== undefined) out.push(String(s.maximum + 1));
  if (s.minimum !== undefined) out.push(String(s.minimum - 1));
  if (Array.isArray(s.enum)) out.push(JSON.stringify(`${s.enum[0]}X`), JSON.stringify(String(s.enum[0]).toUpperCase() + "_"));
  if (typeof s.pattern === "string") out.push('"\\u0000"', '"a\\u0007b"', '"\\ud800"');
  if (s.maxItems !== undefined) out.push(JSON.stringify(Array.from({ length: s.maxItems + 1 }, (_, i) => `i${i}`)));
  if (s.minItems > 0) out.push("[]");
  if (s.format === "email") out.push('"not-an-email"', '"a@"');
  if (s.format === "date-time") out.push('"yesterday"', '"2024-02-30T00:00:00Z"', '"99999-01-01T00:00:00Z"');
  return out;
}

/** A minimal valid-looking body from a schema (for operations without a hand-written example). */
function sample(schema: any): unknown {
  const s = resolve(schema) ?? {};
  if (Array.isArray(s.anyOf)) return sample(s.anyOf[0]);
  if (Array.isArray(s.enum)) return s.enum[0];
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  if (type === "object") return Object.fromEntries((s.required ?? []).map((k: string) => [k, sample(s.properties?.[k])]));
  if (type === "array") return s.minItems > 0 ? [sample(s.items)] : [];
  if (type === "integer" || type === "number") return s.minimum ?? 1;
  if (type === "boolean") return true;
  return s.format === "email" ? "fuzz@example.test" : s.format === "date-time" ? new Date(Date.now() + 86_400_000).toISOString() : "fuzz";
}

/** `{"key":value,...rest}` as text, without letting JavaScript interpret keys such as __proto__. */
function withField(example: Record<string, unknown>, key: string, valueText: string, mode: "set" | "prepend" | "append" = "set"): string {
  const entries = Object.entries(example)
    .filter(([k]) => mode !== "set" || k !== key)
    .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
  const field = `${JSON.stringify(key)}:${valueText}`;
  return `{${(mode === "append" || mode === "set" ? [...entries, field] : [field, ...entries]).join(",")}}`;
}

function bodyArb(op: Operation, example: Record<string, unknown>): fc.Arbitrary<BodyCase> {
  const schema = op.body ?? {};
  const props: Record<string, any> = schema.properties ?? {};
  const names = Object.keys(props);
  const required: string[] = schema.required ?? [];
  const text = JSON.stringify(example);
  const json = (body: string, invalid: boolean, label: string): BodyCase => ({ body, contentType: "application/json", invalid, label });
  const choices: [number, fc.Arbitrary<BodyCase>][] = [
    [1, fc.constant(json(text, false, "valid example"))],
    [
      3,
      fc
        .tuple(fc.oneof(fc.constantFrom("id", "orgId", "secret", "admin", "owner", "createdBy", "__proto__", "constructor", "status ", "NAME"), fc.string({ minLength: 1, maxLength: 12 })), wrongJsonValue)
        .filter(([k]) => !(k in props))
        .map(([k, v]) => json(withField(example, k, v), k !== "__proto__", `extra field ${JSON.stringify(k)}`)),
    ],
    [
      3,
      fc.constant(null).chain(() =>
        names.length === 0
          ? fc.constant(json("[]", true, "array for an object"))
          : fc.tuple(fc.constantFrom(...names), wrongJsonValue).map(([k, v]) => json(withField(example, k, v), !admitted(props[k]).has(jsonType(v)) || v.length > 65_536, `field ${k} = ${v.slice(0, 60)}`)),
      ),
    ],
    [3, fc.constant(null).chain(() => {
      const broken = names.flatMap((k) => outOfRange(props[k]).map((v) => [k, v] as const));
      return broken.length === 0 ? fc.constant(json("null", true, "null body")) : fc.constantFrom(...broken).map(([k, v]) => json(withField(example, k, v), true, `out of range ${k} = ${v.slice(0, 60)}`));
    })],
    [
      1,
      fc.constant(null).chain(() =>
        required.length === 0
          ? fc.constant(json("{}", false, "empty object"))
          : fc.constantFrom(...required).map((k) => json(JSON.stringify(Object.fromEntries(Object.entries(example).filter(([n]) => n !== k))), true, `without required ${k}`)),
      ),
    ],
    [1, fc.constantFrom(...MALFORMED_JSON).map((b) => json(b, true, "malformed JSON"))],
    [1, fc.constantFrom("null", "[]", "0", '"x"', "true", `[${text}]`).map((b) => json(b, true, "not an object"))],
    [1, deepJsonText.map((b) => json(b, true, "deeply nested body"))],
    [1, fc.constantFrom(...names.length ? names : ["x"]).map((k) => json(withField(example, k, deepJson(10_000, "array")), true, `10k-deep array in ${k}`))],
    [1, fc.constantFrom(30_000, 40_000).map((n) => json(`[${"0,".repeat(n)}0]`, true, `array of ${n}`))],
    [1, fc.constantFrom(70_000, 200_000).map((n) => json(withField(example, names[0] ?? "x", JSON.stringify("h".repeat(n))), true, `${n}-char string (over the body limit)`))],
    [
      1,
      fc.tuple(fc.constantFrom(...INVALID_UTF8), fc.boolean()).map(([bytes, inside]) => {
        if (inside && text.includes('":"')) {
          const at = text.indexOf('":"') + 3;
          return { body: concatBytes(text.slice(0, at), bytes, text.slice(at)), contentType: "application/json", invalid: false, label: "invalid UTF-8 inside a string" };
        }
        return { body: concatBytes(bytes, text), contentType: "application/json", invalid: true, label: "invalid UTF-8 before the JSON" };
      }),
    ],
    [
      1,
      fc.constantFrom('"\\ud800"', '"\\udfff"', '"a\\udc00b"', '"\\ud83d"').chain((s) =>
        fc.constantFrom(...(names.length ? names : ["x"])).map((k) => json(withField(example, k, s), !admitted(props[k]).has("string"), `lone surrogate in ${k}`)),
      ),
    ],
    [1, fc.constantFrom(...NON_JSON_TYPES).map((t) => ({ body: text, contentType: t, invalid: true, label: `content-type ${JSON.stringify(t)}` }))],
    [1, fc.constantFrom(...JSON_LIKE_TYPES).map((t) => ({ body: text, contentType: t, invalid: false, label: `content-type ${t}` }))],
    [1, fc.constantFrom<BodyCase>({ invalid: op.bodyRequired, label: "no body, no content-type" }, { body: "", contentType: "application/json", invalid: op.bodyRequired, label: "empty body" })],
    [
      1,
      fc.constant(null).chain(() =>
        names.length === 0
          ? fc.constant(json('{"a":1,"a":2}', true, "duplicate keys"))
          : fc.constantFrom(...names).map((k) => json(`${withField(example, k, JSON.stringify(example[k] ?? "x"), "prepend").slice(0, -1)},${JSON.stringify(k)}:{"dup":[]}}`, !admitted(props[k]).has("object"), `duplicate key ${k}, last one wrong`)),
      ),
    ],
    [1, fc.constant(json(withField(example, "pad", JSON.stringify("p".repeat(70_000))), true, "valid-looking body over 64 KiB"))],
  ];
  const rules = semantic[`${op.method} ${op.path}`];
  if (rules) choices.push([10, fc.constantFrom(...rules).map(([why, b, who]) => ({ ...json(JSON.stringify(b), true, `semantic: ${why}`), mustReject: true, semanticFor: who ?? ORG_A_WRITERS }))]);
  if ("publicKey" in props) {
    // Malformed PEM and JWK (and private, symmetric, weak, off-curve keys) where a public key goes.
    // The key's own alg hint only (none by default), and private_key_jwt where the body names a method.
    const { alg: _alg, ...withoutAlg } = example;
    const base = (k: HostileKey) => ({ ...withoutAlg, ...(k.alg ? { alg: k.alg } : {}), ...("tokenEndpointAuthMethod" in props ? { tokenEndpointAuthMethod: "private_key_jwt" } : {}) });
    const usable = keys.filter((k) => k.alg === undefined || "alg" in props);
    choices.push([6, fc.constantFrom(...usable).map((k) => ({ ...json(withField(base(k), "publicKey", k.text), k.mustReject, `publicKey: ${k.label}`), mustReject: k.mustReject }))]);
  }
  return weighted(...choices);
}

/** Bodies for operations without one: none, or something the operation should ignore or refuse. */
const noBodyArb = (method: string): fc.Arbitrary<BodyCase> =>
  method === "GET"
    ? fc.constant({ invalid: false, label: "no body" })
    : weighted<BodyCase>(
        [4, fc.constant({ invalid: false, label: "no body" })],
        [1, fc.constantFrom('{"x":1}', "[]", "garbage").map((body) => ({ body, contentType: "application/json", invalid: false, label: "unexpected JSON body" }))],
        [1, fc.constantFrom(...NON_JSON_TYPES).map((contentType) => ({ body: "a=b", contentType, invalid: false, label: `unexpected ${contentType} body` }))],
        [1, fc.constant({ body: "x".repeat(70_000), contentType: "application/json", invalid: false, label: "huge unexpected body" })],
      );

/** Query strings from the operation's declared parameters: valid, invalid, duplicated, plus junk. */
function queryArb(op: Operation): fc.Arbitrary<string> {
  if (op.query.length === 0) return weighted([3, fc.constant("")], [1, junkQuery]);
  const valueArb = (p: any): fc.Arbitrary<string> => {
    const s = resolve(p.schema) ?? {};
    const valid: string[] = Array.isArray(s.enum)
      ? s.enum
      : s.type === "integer" || (Array.isArray(s.type) && s.type.includes("integer"))
        ? [String(s.minimum ?? 1), String(s.maximum ?? 10)]
        : s.format === "date-time"
          ? [new Date(0).toISOString(), "2999-01-01T00:00:00Z"]
          : ["x", "access_token.*", "org"];
    const invalid = ["", "-1", "1e9", "1.5", "abc", "0x10", "NaN", "%ZZ", "%00", "%E0%A4%A", ...outOfRange(s).map((v) => pct(String(JSON.parse(v))))];
    return weighted([2, fc.constantFrom(...valid.map(pct))], [2, fc.constantFrom(...invalid)], [1, oddString.map(pct)]);
  };
  const one = fc.constantFrom(...op.query).chain((p) => fc.tuple(fc.constant(p.name as string), valueArb(p), fc.boolean()));
  return fc
    .tuple(fc.array(one, { maxLength: 4 }), weighted([4, fc.constant("")], [1, junkQuery]))
    .map(([pairs, junk]) => {
      const parts = pairs.flatMap(([name, value, dup]) => (dup ? [`${name}=${value}`, `${name}=${value}`] : [`${name}=${value}`]));
      const q = parts.length ? `?${parts.join("&")}` : "";
      return q + (junk ? (q ? `&${junk.slice(1)}` : junk) : "");
    });
}

interface Case {
  auth: Auth;
  binding: "A" | "B";
  params: ParamPick[];
  body: BodyCase;
  query: string;
  headers: [string, string][];
  flip: number;
}

function requestArb(op: Operation): fc.Arbitrary<FuzzRequest> {
  const example = (examples[`${op.method} ${op.path}`] ?? sample(op.body)) as Record<string, unknown>;
  return fc
    .record<Case>({
      auth: auths,
      binding: weighted([3, fc.constant("A" as const)], [1, fc.constant("B" as const)]),
      params: fc.tuple(...op.params.map(() => paramArb)),
      body: op.body ? bodyArb(op, example) : noBodyArb(op.method),
      query: queryArb(op),
      headers: extraHeaders,
      flip: fc.nat(),
    })
    .map((c) => buildRequest(op, c));
}

/** The GARBAGE used when the guard must make a write fail: a well-formed id that does not exist. */
const MISSING = "missing0000000000000000";

function buildRequest(op: Operation, c: Case): FuzzRequest {
  const semanticApplies = c.body.semanticFor !== undefined && c.binding === "A" && (c.body.semanticFor.includes("*") || c.body.semanticFor.includes(c.auth.label));
  const values = op.params.map((name, i) => {
    // A semantic rule is about org A's real objects: its path parameters are the real ones.
    const pick: ParamPick = semanticApplies ? { kind: "real", index: 0 } : c.params[i]!;
    if (pick.kind !== "real") return { value: pick.value, garbage: pick.kind === "garbage" };
    const options = bindings[c.binding][name] ?? bindings.A[name];
    return options ? { value: pct(options[pick.index % options.length]!), garbage: false } : { value: "unknown-param", garbage: true };
  });
  let body = c.body;
  if (body.semanticFor && !semanticApplies) {
    body = { ...body, invalid: false, mustReject: false };
  }
  const labels = [`auth: ${c.auth.label}`, `binding ${c.binding}`, body.label];
  // Guard: a privileged write with a body that may be valid and no garbage id could succeed on a
  // seeded fixture (and delete it); make one path parameter a missing id, or the body invalid.
  if (c.auth.privileged && op.method !== "GET" && !body.invalid && !values.some((v) => v.garbage)) {
    if (values.length > 0) {
      const i = c.flip % values.length;
      values[i] = { value: `${op.params[i]}_${MISSING}`, garbage: true };
      labels.push(`guard: ${op.params[i]} made missing`);
    } else {
      body = { body: withField((examples[`${op.method} ${op.path}`] ?? {}) as Record<string, unknown>, "fuzzGuard", "1"), contentType: "application/json", invalid: true, label: "guard: unknown field" };
      labels.push("guard: unknown field added");
    }
  }
  let i = 0;
  const path = op.path.replace(/\{[^}]+\}/g, () => values[i++]!.value) + c.query;
  const headers: [string, string][] = [...c.headers];
  if (c.auth.header !== undefined) headers.push(["authorization", c.auth.header]);
  if (body.contentType !== undefined) headers.push(["content-type", body.contentType]);
  return { method: op.method, path, headers, body: body.body, label: labels.join("; "), mustReject: body.mustReject === true };
}

const problemDialect = () => "problem" as const;

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

describe("every operation of the OpenAPI document", () => {
  it("the document lists the operations (so the properties below are not vacuous)", () => {
    expect(operations.length, JSON.stringify(Object.keys(doc.paths))).toBeGreaterThanOrEqual(40);
    expect(operations.filter((o) => o.body).length).toBeGreaterThanOrEqual(15);
  });

  for (const op of operations) {
    it(`${op.method} ${op.path}`, async () => {
      const tracker = new StateTracker();
      await tracker.reset();
      await fc.assert(
        fc.asyncProperty(requestArb(op), async (req) => {
          await tracker.check(req, problemDialect);
        }),
        { numRuns: RUNS },
      );
      // Writes: the generators are meant to produce mostly rejected (near-valid) requests.
      if (op.method !== "GET") expect(tracker.rejected, `rejected ${tracker.rejected}, accepted ${tracker.accepted}`).toBeGreaterThan(RUNS / 2);
    }, TIMEOUT);
  }
});

describe("outside the operations of the document", () => {
  it("wrong methods and unknown paths answer documented problems and change nothing", async () => {
    const tracker = new StateTracker();
    await tracker.reset();
    // A self-ending path keeps its own methods with a query suffix (`?x=1`): left out like its operation.
    const paths = Object.keys(managementPaths).filter((p) => ![...SELF_ENDING].some((op) => op.endsWith(` ${p}`)));
    const arb = fc
      .record({
        path: fc.constantFrom(...paths),
        method: fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "PROPFIND", "get", "Patch"),
        suffix: fc.constantFrom("", "/", "//", "/x", "/..", "/%2e%2e", ".json", "?x=1"),
        auth: auths,
        body: fc.option(fc.constantFrom("{}", "[]", "x", deepJson(10_000, "object")), { nil: undefined }),
        headers: extraHeaders,
      })
      .map(({ path, method, suffix, auth, body, headers }): FuzzRequest => {
        const m = method.toUpperCase();
        // Only methods the document does not define for the path (defined ones have their own property).
        const defined = Object.keys(doc.paths[path] ?? {}).map((x) => x.toUpperCase());
        const verb = defined.includes(m) && suffix === "" ? (m === "PUT" ? "PROPFIND" : "PUT") : m;
        const filled = path.replace(/\{([^}]+)\}/g, (_, name: string) => pct(bindings.A[name]?.[0] ?? "x"));
        const h: [string, string][] = [...headers];
        if (auth.header) h.push(["authorization", auth.header]);
        const withBody = verb !== "GET" && verb !== "HEAD" && body !== undefined;
        if (withBody) h.push(["content-type", "application/json"]);
        return { method: verb, path: filled + suffix, headers: h, body: withBody ? body : undefined, label: `auth: ${auth.label}` };
      });
    await fc.assert(
      fc.asyncProperty(arb, async (req) => {
        if (req.method === "HEAD") {
          // No body to check on HEAD: only the status and the state.
          const before = await snapshot();
          const res = await send(req);
          if (res.status >= 500) throw new PropertyViolation("5xx", req, res);
          const diff = diffSnapshots(before, await snapshot());
          if (res.status >= 400 && diff.tables.length > 0) throw new PropertyViolation("a rejected HEAD changed D1", req, res, diff.detail);
          await tracker.reset();
          return;
        }
        await tracker.check(req, problemDialect);
      }),
      { numRuns: ROUTING_RUNS },
    );
  }, TIMEOUT);

  it("GET /healthz, /openapi.json and /docs answer any junk query or header, without a 5xx", async () => {
    const tracker = new StateTracker();
    await tracker.reset();
    const arb = fc
      .record({ path: fc.constantFrom("/healthz", "/openapi.json", "/docs", "/docs/", "/openapi.json/"), query: junkQuery, auth: auths, headers: extraHeaders })
      .map(({ path, query, auth, headers }): FuzzRequest => ({
        method: "GET",
        path: path + query,
        headers: [...headers, ...(auth.header ? ([["authorization", auth.header]] as [string, string][]) : [])],
        label: `auth: ${auth.label}`,
      }));
    await fc.assert(
      fc.asyncProperty(arb, async (req) => {
        const res = await tracker.check(req, problemDialect);
        const bare = req.path.split("?")[0]!;
        if (["/healthz", "/openapi.json", "/docs"].includes(bare) && res.status !== 200) throw new PropertyViolation("a public document is not 200", req, res);
      }),
      { numRuns: PUBLIC_RUNS },
    );
  }, TIMEOUT);
});

describe("public keys, exhaustively", () => {
  it("every malformed or unacceptable key is refused by POST …/keys from an admin, and changes nothing", async () => {
    const holder = await created("POST", `/api/v1/orgs/${A.org.id}/service-accounts`, A.adminToken, { name: "key-holder" });
    const tracker = new StateTracker();
    await tracker.reset();
    for (const key of keys) {
      const req: FuzzRequest = {
        method: "POST",
        path: `/api/v1/orgs/${A.org.id}/service-accounts/${holder.id}/keys`,
        headers: [["authorization", `Bearer ${A.adminToken}`], ["content-type", "application/json"]],
        body: `{"publicKey":${key.text}${key.alg ? `,"alg":${JSON.stringify(key.alg)}` : ""}}`,
        label: key.label,
        mustReject: key.mustReject,
      };
      const res = await tracker.check(req, problemDialect);
      if (key.mustReject && !(res.status === 400 && ["invalid_key", "validation_failed"].includes(res.json?.code))) throw new PropertyViolation("a bad key is not a 400 invalid_key", req, res);
      if (!key.mustReject && ![201, 409].includes(res.status)) throw new PropertyViolation("a well-formed key is refused", req, res);
    }
  });
});

describe("regressions found by these properties", () => {
  /** POST …/service-accounts/{sa}/keys from an org admin, on a fresh account: a clean 400, nothing stored. */
  const refused = async (label: string) => {
    const key = keys.find((k) => k.label === label)!;
    const made = await call("POST", `/api/v1/orgs/${A.org.id}/service-accounts`, { token: A.adminToken, body: { name: unique("bug") } });
    expect(made.status, made.text).toBe(201);
    const req: FuzzRequest = {
      method: "POST",
      path: `/api/v1/orgs/${A.org.id}/service-accounts/${made.json.id}/keys`,
      headers: [["authorization", `Bearer ${A.adminToken}`], ["content-type", "application/json"]],
      body: `{"publicKey":${key.text}}`,
    };
    const res = await send(req);
    expect(res.status, res.text).toBe(400);
    expect(["invalid_key", "validation_failed"]).toContain(res.json.code);
    const listed = await call("GET", `/api/v1/orgs/${A.org.id}/service-accounts/${made.json.id}/keys`, { token: A.adminToken });
    expect(listed.json.items).toEqual([]);
  };
  it("an X25519 SPKI PEM is refused (it was registered as an EdDSA key: the SPKI algorithm is now checked)", () => refused("PEM X25519"));
  it("a JWK whose kid holds a NUL is refused (a JWK's kid follows the kid field's rules)", () => refused("JWK with a NUL in kid"));
  it("a JWK whose kid has 5000 characters is refused", () => refused("JWK with a 5000-char kid"));
  it("a JWK whose kid is a lone surrogate is refused", () => refused("JWK with a lone surrogate kid"));
});


describe("the properties can fail", () => {
  it("the D1 snapshot sees a successful create (and only hashes what changed)", async () => {
    const before = await snapshot();
    const res = await call("POST", `/api/v1/orgs/${A.org.id}/projects`, { token: A.adminToken, body: { slug: unique("snap"), name: "Snapshot check" } });
    expectStatus(res, 201);
    const diff = diffSnapshots(before, await snapshot());
    expect(diff.tables, diff.detail).toContain("projects");
    expect(diff.tables, diff.detail).toContain("audit_events");
    expect(diff.tables, diff.detail).not.toContain("orgs");
    // And a direct write to any table is seen too.
    const again = await snapshot();
    await env.DB.prepare("update orgs set name = name || '!' where id = ?").bind(B.org.id).run();
    expect(diffSnapshots(again, await snapshot()).tables).toEqual(["orgs"]);
  });

  it("the shape checks refuse a 5xx, an unknown code, a mismatched status and a non-RFC 6749 body", () => {
    const req: FuzzRequest = { method: "GET", path: "/x", headers: [] };
    const res = (status: number, body: unknown, type = "application/problem+json", extra: Record<string, string> = {}) => ({
      status,
      headers: new Headers({ "content-type": type, "x-request-id": "req_12345678", "cache-control": "no-store", ...extra }),
      text: JSON.stringify(body),
      json: body,
    });
    const good = { type: "t", title: "t", status: 404, detail: "d", code: "not_found", requestId: "req_12345678" };
    expect(() => checkProblem(req, res(404, good))).not.toThrow();
    expect(() => checkProblem(req, res(404, { ...good, code: "nope" }))).toThrow(PropertyViolation);
    expect(() => checkProblem(req, res(400, { ...good, status: 400 }))).toThrow(/belongs to 404/);
    expect(() => checkProblem(req, res(404, good, "application/json"))).toThrow(/content-type/);
    expect(() => checkProblem(req, res(404, { ...good, extra: 1 }))).toThrow(/unexpected/);
    expect(() => checkProblem(req, res(429, { ...good, status: 429, code: "rate_limited" }))).toThrow(/Retry-After/);
    expect(() => checkProblem(req, res(429, { ...good, status: 429, code: "rate_limited" }, "application/problem+json", { "retry-after": "3" }))).not.toThrow();
    expect(() => checkOAuthError(req, res(400, { error: "invalid_request", error_description: "x" }, "application/json"))).not.toThrow();
    expect(() => checkOAuthError(req, res(400, { error: "validation_failed" }, "application/json"))).toThrow(/unknown error/);
    expect(() => checkOAuthError(req, res(400, good, "application/json"))).toThrow(PropertyViolation);
  });
});
