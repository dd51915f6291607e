import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { call, unique } from "../helpers.ts";
import {
  ACCESS_TOKEN_TYPE,
  expectOAuthError,
  expectUnauthorized,
  JWT_BEARER,
  JWT_TOKEN_TYPE,
  postForm,
  TOKEN_EXCHANGE,
  type Res,
} from "./oauth-helpers.ts";

/**
 * Shared helpers of the attack tests (attacks-tokens, attacks-restler): every place a credential
 * is accepted, probed at once, and the OpenAPI document walked so that route coverage is automatic.
 */

/**
 * Takes the brute-force limiters (the optional AUTH_FAILURES_IP and AUTH_FAILURES_CLIENT bindings)
 * out of the Worker's env until the returned function puts them back. The probes fail on purpose
 * dozens of times per client id; with the limiter on, the refusals would turn into 429s that come
 * before the credential is looked at, and the attacks would test nothing. The limiter has tests of its own.
 */
export function withoutAuthLimiter(): () => void {
  const bindings = env as unknown as Record<string, unknown>;
  const names = ["AUTH_FAILURES_IP", "AUTH_FAILURES_CLIENT"];
  const saved = names.map((name) => bindings[name]);
  for (const name of names) bindings[name] = undefined;
  return () => names.forEach((name, i) => (bindings[name] = saved[i]));
}

/** Every place a credential (access token or JWT) is accepted. */
export type Point =
  /** `Authorization: Bearer` on the management API (and POST /api/v1/auth/authorize, DELETE /api/v1/tokens/current). */
  | "bearer"
  /** POST /api/auth/access-tokens/jwt {access_token}. */
  | "exchange"
  /** /oauth/token (and its /api/m2m alias) client_secret_basic: client_id = the holder, secret = the credential. */
  | "basic"
  /** /oauth/token client_secret_post. */
  | "post"
  /** /oauth/token private_key_jwt: the credential as client_assertion. */
  | "assertion"
  /** /oauth/token RFC 8693 token exchange: the credential as subject_token (both token types). */
  | "subject"
  /** /oauth/introspect token=credential (by a good client): exactly {active: false}. */
  | "introspect"
  /** /oauth/introspect and /oauth/revoke authenticated BY the credential (basic, post, assertion). */
  | "clientAuth"
  /** /oauth/revoke token=credential (by a good client): a 200 that changes nothing. */
  | "revoke";

export const ALL_POINTS: Point[] = ["bearer", "exchange", "basic", "post", "assertion", "subject", "introspect", "clientAuth", "revoke"];

/** Whose credential it is (or claims to be): the client_id and the account path used. */
export interface Holder {
  orgId: string;
  accountId: string;
}

/** A good client (id and access token). */
export interface GoodClient {
  id: string;
  secret: string;
}

/**
 * The good clients of the probes: one introspects; one revokes (the platform root, which may
 * revoke anyone's token, so that a refused revocation of a dead credential is always a plain 200).
 */
export interface Probes {
  introspector: GoodClient;
  revoker: GoodClient;
}

const tokenEndpoints = ["/oauth/token", "/api/m2m/oauth/token"];

function expectNoIssuedToken(res: Res, msg: string) {
  expect(res.text, `${msg}: a credential was issued: ${res.text}`).not.toMatch(/"(access_token|jwt)"\s*:/);
}

function expectInactive(res: Res, msg: string) {
  expect(res.status, `${msg}: ${res.status} ${res.text}`).toBe(200);
  expect(res.headers.get("cache-control") ?? "", msg).toMatch(/no-store/);
  expect(res.json, `${msg}: ${res.text}`).toStrictEqual({ active: false });
}

const checks: Record<Point, (cred: string, h: Holder, rs: Probes) => Promise<void>> = {
  async bearer(cred, h) {
    expectUnauthorized(await call("GET", `/api/v1/orgs/${h.orgId}/service-accounts/${h.accountId}`, { token: cred }));
    expectUnauthorized(await call("GET", "/api/v1/orgs", { token: cred }));
    expectUnauthorized(await call("POST", "/api/v1/auth/authorize", { token: cred, body: { org: h.orgId } }));
    // Self-revocation takes the same bearer credential: a refused one ends nothing.
    expectUnauthorized(await call("DELETE", "/api/v1/tokens/current", { token: cred }));
  },
  async exchange(cred) {
    const res = await call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: cred } });
    if (cred.startsWith("sat_") && cred.length <= 256) expectUnauthorized(res);
    else expect([400, 401], `exchange: ${res.status} ${res.text}`).toContain(res.status);
    expectNoIssuedToken(res, "exchange");
  },
  async basic(cred, h) {
    for (const path of tokenEndpoints) {
      const res = await postForm(path, { grant_type: "client_credentials" }, { basic: [h.accountId, cred] });
      expectOAuthError(res, 401, "invalid_client");
    }
  },
  async post(cred, h) {
    expectOAuthError(await postForm("/oauth/token", { grant_type: "client_credentials", client_id: h.accountId, client_secret: cred }), 401, "invalid_client");
  },
  async assertion(cred) {
    const res = await postForm("/oauth/token", { grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: cred });
    expectOAuthError(res, 401, "invalid_client");
  },
  async subject(cred) {
    for (const type of [ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE]) {
      const res = await postForm("/oauth/token", { grant_type: TOKEN_EXCHANGE, subject_token: cred, subject_token_type: type });
      expectOAuthError(res, 400, "invalid_grant");
    }
  },
  async introspect(cred, _h, rs) {
    expectInactive(await postForm("/oauth/introspect", { token: cred }, { basic: [rs.introspector.id, rs.introspector.secret] }), "introspect");
  },
  async clientAuth(cred, h) {
    for (const path of ["/oauth/introspect", "/oauth/revoke"]) {
      // The token asked about is harmless: were the client let in, nothing of the good client's would be revoked.
      const token = "not-a-token";
      expectOAuthError(await postForm(path, { token }, { basic: [h.accountId, cred] }), 401, "invalid_client");
      expectOAuthError(await postForm(path, { token, client_id: h.accountId, client_secret: cred }), 401, "invalid_client");
      expectOAuthError(await postForm(path, { token, client_assertion_type: JWT_BEARER, client_assertion: cred }), 401, "invalid_client");
    }
  },
  async revoke(cred, _h, rs) {
    const res = await postForm("/oauth/revoke", { token: cred }, { basic: [rs.revoker.id, rs.revoker.secret] });
    expect(res.status, `revoke: ${res.status} ${res.text}`).toBe(200);
  },
};

/** Asserts that `cred` is refused at each of `points`; a failure names the credential and the point. */
export async function refusedAt(label: string, cred: string, holder: Holder, rs: Probes, points: Point[] = ALL_POINTS) {
  for (const point of points) {
    try {
      await checks[point](cred, holder, rs);
    } catch (err) {
      if (err instanceof Error) err.message = `[${label} @ ${point}] ${err.message}`;
      throw err;
    }
  }
  // The probes changed nothing for the good client.
  expect((await call("GET", "/api/v1/orgs", { token: rs.introspector.secret })).status, `[${label}] the introspecting client still works`).toBe(200);
}

/** The same points, for a credential that must work (the controls that make the refusals meaningful). */
export async function acceptedAt(label: string, cred: string, holder: Holder, rs: Probes, points: Point[]) {
  const ok = async (res: Res, what: string) => expect(res.status, `[${label} @ ${what}] ${res.status} ${res.text}`).toBe(200);
  for (const point of points) {
    switch (point) {
      case "bearer":
        await ok(await call("GET", `/api/v1/orgs/${holder.orgId}/service-accounts/${holder.accountId}`, { token: cred }), point);
        break;
      case "exchange":
        await ok(await call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: cred } }), point);
        break;
      case "basic":
        for (const path of tokenEndpoints) await ok(await postForm(path, { grant_type: "client_credentials" }, { basic: [holder.accountId, cred] }), `${point} ${path}`);
        break;
      case "post":
        await ok(await postForm("/oauth/token", { grant_type: "client_credentials", client_id: holder.accountId, client_secret: cred }), point);
        break;
      case "assertion":
        await ok(await postForm("/oauth/token", { grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: cred }), point);
        break;
      case "subject":
        await ok(await postForm("/oauth/token", { grant_type: TOKEN_EXCHANGE, subject_token: cred, subject_token_type: ACCESS_TOKEN_TYPE }), point);
        break;
      case "introspect": {
        const res = await postForm("/oauth/introspect", { token: cred }, { basic: [rs.introspector.id, rs.introspector.secret] });
        await ok(res, point);
        expect(res.json.active, `[${label} @ introspect] ${res.text}`).toBe(true);
        break;
      }
      case "clientAuth":
        await ok(await postForm("/oauth/introspect", { token: "not-a-token" }, { basic: [holder.accountId, cred] }), point);
        break;
      case "revoke":
        throw new Error("acceptedAt: revoking would kill the control credential");
    }
  }
}

/** One operation of the OpenAPI document. */
export interface ApiOperation {
  method: string;
  template: string;
  /** Path parameter names, in order. */
  params: string[];
}

/** Every operation of GET /openapi.json (the coverage of the route walks follows the document). */
export async function apiOperations(): Promise<ApiOperation[]> {
  const res = await call("GET", "/openapi.json");
  expect(res.status, res.text).toBe(200);
  const ops: ApiOperation[] = [];
  for (const [template, item] of Object.entries(res.json.paths as Record<string, Record<string, unknown>>)) {
    for (const method of Object.keys(item)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      const params = [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
      ops.push({ method: method.toUpperCase(), template, params });
    }
  }
  expect(ops.length, "the OpenAPI document lists the routes").toBeGreaterThan(30);
  return ops;
}

/** The template with its parameters replaced (unknown parameters fail loudly). */
export function fill(template: string, ids: Record<string, string>): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const v = ids[name];
    if (v === undefined) throw new Error(`no value for {${name}} in ${template}`);
    return encodeURIComponent(v);
  });
}

/** Material for request bodies that pass validation, so that a refusal comes from the handler. */
export interface BodyMaterial {
  /** A PEM SPKI public key nobody registered. */
  pem: string;
  /** An email of an account of a third org (for invitations). */
  inviteEmail: string;
  /** Role reference to put in role-assignment bodies (default viewer). */
  role?: string;
  /** Scope to put in role-assignment and invitation bodies. */
  scope?: { type: "org" | "project" | "environment"; id: string };
}

/** A valid body for each operation that takes one (undefined for none). */
export function bodyFor(op: ApiOperation, ids: Record<string, string>, m: BodyMaterial): unknown {
  const t = op.template;
  const assignment = { role: m.role ?? "viewer", ...(m.scope ? { scope: m.scope } : {}) };
  const key = `${op.method} ${t}`;
  const table: Record<string, unknown> = {
    "POST /api/v1/orgs": { slug: unique("evil"), name: "Evil" },
    "PATCH /api/v1/orgs/{org}": { name: "pwned", policy: { maxActiveTokensPerAccount: 10 } },
    "POST /api/v1/orgs/{org}/projects": { slug: unique("evil"), name: "Evil" },
    "POST /api/v1/orgs/{org}/projects/{prj}/environments": { slug: unique("evil"), name: "Evil" },
    "POST /api/v1/orgs/{org}/service-accounts": { name: unique("intruder"), roles: [assignment], issueToken: true },
    "PATCH /api/v1/orgs/{org}/service-accounts/{sa}": { description: "pwned", status: "disabled", allowedScopes: ["pwned"], allowedCidrs: ["203.0.113.0/24"] },
    "POST /api/v1/orgs/{org}/service-accounts/{sa}/role-assignments": assignment,
    "POST /api/v1/orgs/{org}/service-accounts/{sa}/tokens": {},
    "POST /api/v1/orgs/{org}/service-accounts/{sa}/tokens/{tok}/regenerate": { graceSeconds: 0 },
    "POST /api/v1/orgs/{org}/service-accounts/{sa}/keys": { publicKey: m.pem },
    "PATCH /api/v1/orgs/{org}/service-accounts/{sa}/keys/{key}": { status: "disabled" },
    "PUT /api/v1/orgs/{org}/service-accounts/{sa}/jwks-uri": { jwksUri: "https://jwks.evil.example.com/keys.json" },
    "POST /api/v1/orgs/{org}/service-accounts/{sa}/federated-credentials": { name: unique("evil"), issuer: "https://token.actions.githubusercontent.com", subject: "repo:evil/x:ref:refs/heads/main" },
    "PATCH /api/v1/orgs/{org}/service-accounts/{sa}/federated-credentials/{fed}": { subject: null, claims: { repository_owner: "evil" } },
    "POST /api/v1/orgs/{org}/roles": { name: unique("evil"), operations: ["orgs.read"] },
    "PATCH /api/v1/orgs/{org}/roles/{role}": { description: "pwned", operations: ["orgs.read"] },
    "POST /api/v1/orgs/{org}/invitations": { email: m.inviteEmail, ...assignment },
    "PATCH /api/v1/orgs/{org}/service-accounts/{sa}/invitations/{inv}": { state: "accepted" },
    "POST /api/v1/auth/authorize": { org: ids.org ?? "" },
    "POST /api/service-accounts": { name: unique("intruder"), permissions: ["service-accounts.read"] },
    "POST /api/v1/orgs/{org}/webhooks": { url: `${env.TEST_WEBHOOK_RECEIVER}/hook/${unique("evil")}` },
    "PATCH /api/v1/orgs/{org}/webhooks/{whk}": { description: "pwned", enabled: false },
  };
  return key in table ? table[key] : undefined;
}

/** Sends one operation with its ids and a valid body. */
export function send(op: ApiOperation, ids: Record<string, string>, token: string, m: BodyMaterial) {
  const body = bodyFor(op, ids, m);
  return call(op.method, fill(op.template, ids), body === undefined ? { token } : { token, body });
}

/** Deep copy without the fields that legitimately move while nothing changes (use tracking). */
export function stable(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value), (k, v) => (k === "lastUsedAt" ? undefined : v));
}

async function getOk(path: string, token: string) {
  const res = await call("GET", path, { token });
  expect(res.status, `snapshot ${path}: ${res.text}`).toBe(200);
  return res.json;
}

/** Everything an org holds, as its own admin reads it (for before/after comparisons). */
export async function snapshotOrg(adminToken: string, orgId: string) {
  const o = `/api/v1/orgs/${orgId}`;
  const snap: Record<string, unknown> = {
    org: await getOk(o, adminToken),
    roles: await getOk(`${o}/roles`, adminToken),
    invitations: await getOk(`${o}/invitations`, adminToken),
    orgTokens: await getOk(`${o}/tokens?limit=200`, adminToken),
  };
  const projects = (await getOk(`${o}/projects?limit=200`, adminToken)).items as { id: string }[];
  snap.projects = projects;
  for (const p of projects) snap[`envs:${p.id}`] = await getOk(`${o}/projects/${p.id}/environments?limit=200`, adminToken);
  const accounts = (await getOk(`${o}/service-accounts?limit=200`, adminToken)).items as { id: string }[];
  snap.accounts = accounts;
  for (const a of accounts) {
    const sa = `${o}/service-accounts/${a.id}`;
    snap[`tokens:${a.id}`] = await getOk(`${sa}/tokens?limit=200`, adminToken);
    snap[`keys:${a.id}`] = await getOk(`${sa}/keys`, adminToken);
    snap[`feds:${a.id}`] = await getOk(`${sa}/federated-credentials`, adminToken);
    snap[`ras:${a.id}`] = await getOk(`${sa}/role-assignments`, adminToken);
    snap[`invs:${a.id}`] = await getOk(`${sa}/invitations`, adminToken);
  }
  return stable(snap);
}

export const is2xx = (status: number) => status >= 200 && status < 300;
