import { env } from "cloudflare:workers";
import * as jose from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, platformRoot } from "../helpers.ts";
import { auditOf, freshOrg, issue, issueOk, kvKeyOf, readSelf, regenerate, setPolicy, tokensPath, viewerAccount } from "./token-helpers.ts";
import { expectProblem, expectUnauthenticated, sleep } from "./registry-helpers.ts";
import { postForm } from "./oauth-helpers.ts";
import { consoleGet, consoleLogin } from "./console-helpers.ts";
import { deliveryRows, hooks, receiver } from "./webhook-helpers.ts";

/**
 * Issue 20, per-token restrictions: a token's own scopes (within its account's), networks (within
 * its account's) and remaining uses with a refill, counted atomically in the account's Durable
 * Object, never answered from the KV or isolate caches alone.
 */

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

const exchange = (token: string, body: Record<string, unknown> = {}, ip?: string) =>
  call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: token, ...body }, headers: ip ? { "cf-connecting-ip": ip } : {} });
const scopeOf = (jwt: string) => String(jose.decodeJwt(jwt).scope ?? "");

/** A fresh org (up to 10 tokens an account) with a viewer account. */
async function setup(extra: Record<string, unknown> = {}) {
  const { org, adminToken } = await freshOrg(root.token);
  await setPolicy(adminToken, org.id, { maxActiveTokensPerAccount: 10 });
  const sa = await viewerAccount(adminToken, org.id, extra);
  return { org, adminToken, sa };
}

async function tokenDto(adminToken: string, org: string, sa: string, id: string) {
  const res = await call("GET", tokensPath(org, sa), { token: adminToken });
  expectStatus(res, 200);
  return (res.json.items as { id: string; remainingUses: number | null }[]).find((t) => t.id === id)!;
}

/** Polls the token's D1 mirror (written off the answer's path) until it shows `remaining`. */
async function waitForRemaining(id: string, remaining: number) {
  for (let i = 0; i < 100; i++) {
    const row = await env.DB.prepare("select remaining_uses from access_tokens where id = ?").bind(id).first<{ remaining_uses: number }>();
    if (row?.remaining_uses === remaining) return;
    await sleep(20);
  }
  throw new Error(`remaining_uses of ${id} never became ${remaining}`);
}

describe("per-token restrictions: creation", () => {
  it("shows scopes, networks, remaining uses and refill on the token and in the list", async () => {
    const { org, adminToken, sa } = await setup();
    const tok = await issueOk(adminToken, org.id, sa.id, {
      scopes: ["service-accounts.read"],
      allowedCidrs: ["10.0.0.0/8"],
      remainingUses: 5,
      refill: { amount: 10, interval: "day" },
    });
    expect(tok, JSON.stringify(tok)).toMatchObject({ scopes: ["service-accounts.read"], allowedCidrs: ["10.0.0.0/8"], remainingUses: 5, refill: { amount: 10, intervalSeconds: 86_400 } });
    expect(Date.parse((tok as any).refill.nextRefillAt) - Date.now()).toBeGreaterThan(86_000_000);
    const listed = await tokenDto(adminToken, org.id, sa.id, tok.id);
    expect(listed, JSON.stringify(listed)).toMatchObject({ scopes: ["service-accounts.read"], allowedCidrs: ["10.0.0.0/8"], remainingUses: 5 });
    const plain = await issueOk(adminToken, org.id, sa.id);
    expect(plain, JSON.stringify(plain)).toMatchObject({ scopes: null, allowedCidrs: null, remainingUses: null, refill: null });
    const created = (await auditOf(tok.id)).find((e) => e.action === "access_token.created")!;
    expect(JSON.parse(created.details)).toMatchObject({ scopes: ["service-accounts.read"], remainingUses: 5, refill: { amount: 10, intervalSeconds: 86_400 } });
  });

  it("restrictions on the first token of a new account are checked against the roles it is created with", async () => {
    const { org, adminToken } = await freshOrg(root.token);
    const created = await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, {
      token: adminToken,
      body: { name: "once-bot", roles: [{ role: "viewer" }], issueToken: { scopes: ["service-accounts.read"], remainingUses: 1 } },
    });
    expectStatus(created, 201);
    expect(created.json.token, created.text).toMatchObject({ scopes: ["service-accounts.read"], remainingUses: 1 });
    expect(scopeOf((await exchange(created.json.token.token)).json.jwt)).toBe("service-accounts.read");
    expectUnauthenticated(await exchange(created.json.token.token));
    const refused = await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, {
      token: adminToken,
      body: { name: "greedy-bot", roles: [{ role: "viewer" }], issueToken: { scopes: ["roles.edit"] } },
    });
    expectProblem(refused, 422, "token_scope_not_allowed");
    // Refused before the account exists: nothing is left behind.
    const row = await env.DB.prepare("select id from service_accounts where org_id = ? and name = 'greedy-bot'").bind(org.id).first();
    expect(row).toBeNull();
  });

  it("refuses scopes outside the account's (422 token_scope_not_allowed) and creates nothing", async () => {
    const { org, adminToken, sa } = await setup();
    const res = await issue(adminToken, org.id, sa.id, { scopes: ["service-accounts.read", "roles.edit"] });
    expectProblem(res, 422, "token_scope_not_allowed");
    expect(res.json.detail, res.text).toContain("roles.edit");
    const list = await call("GET", tokensPath(org.id, sa.id), { token: adminToken });
    expect(list.json.items, list.text).toHaveLength(0);
  });

  it("refuses networks outside the account's (422 token_cidr_not_allowed); any network when the account has none", async () => {
    const bounded = await setup({ allowedCidrs: ["10.0.0.0/8"] });
    expectProblem(await issue(bounded.adminToken, bounded.org.id, bounded.sa.id, { allowedCidrs: ["192.168.0.0/16"] }), 422, "token_cidr_not_allowed");
    // A wider block than the account's is not within it either.
    expectProblem(await issue(bounded.adminToken, bounded.org.id, bounded.sa.id, { allowedCidrs: ["10.0.0.0/7"] }), 422, "token_cidr_not_allowed");
    expectProblem(await issue(bounded.adminToken, bounded.org.id, bounded.sa.id, { allowedCidrs: ["2001:db8::/32"] }), 422, "token_cidr_not_allowed");
    await issueOk(bounded.adminToken, bounded.org.id, bounded.sa.id, { allowedCidrs: ["10.1.0.0/16", "10.2.3.4"] });
    const open = await setup();
    await issueOk(open.adminToken, open.org.id, open.sa.id, { allowedCidrs: ["192.168.0.0/16"] });
  });

  it("validates the body: uses >= 1, refill needs remainingUses and one interval, no empty scopes", async () => {
    const { org, adminToken, sa } = await setup();
    for (const body of [
      { remainingUses: 0 },
      { remainingUses: 1.5 },
      { refill: { amount: 1, interval: "day" } },
      { remainingUses: 1, refill: { amount: 1 } },
      { remainingUses: 1, refill: { amount: 1, interval: "day", intervalSeconds: 60 } },
      { remainingUses: 1, refill: { amount: 0, interval: "day" } },
      { remainingUses: 1, refill: { amount: 1, interval: "week" } },
      { scopes: [] },
      { scopes: ["has space"] },
      { allowedCidrs: ["not-a-cidr"] },
    ]) {
      expectProblem(await issue(adminToken, org.id, sa.id, body), 400, "validation_failed");
    }
  });
});

describe("per-token restrictions: scopes at use", () => {
  it("a token's JWTs carry only its scopes; more is invalid_scope; the API refuses operations outside them", async () => {
    const { org, adminToken, sa } = await setup();
    const tok = await issueOk(adminToken, org.id, sa.id, { scopes: ["service-accounts.read"] });
    const res = await exchange(tok.token);
    expectStatus(res, 200);
    expect(scopeOf(res.json.jwt)).toBe("service-accounts.read");
    expectProblem(await exchange(tok.token, { scope: "orgs.read" }), 400, "invalid_scope");
    // Bearer: reading its account is within the token's scopes, reading the org is not.
    expectStatus(await readSelf(tok.token, org.id, sa.id), 200);
    expectProblem(await call("GET", `/api/v1/orgs/${org.id}`, { token: tok.token }), 403, "permission_denied");
    // The account's unrestricted token still reads the org.
    const plain = await issueOk(adminToken, org.id, sa.id);
    expectStatus(await call("GET", `/api/v1/orgs/${org.id}`, { token: plain.token }), 200);
    // client_credentials with the token as client_secret: the same scopes.
    const grant = await postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [sa.id, tok.token] });
    expectStatus(grant, 200);
    expect(scopeOf(grant.json.access_token)).toBe("service-accounts.read");
  });

  it("at use, the scope is the intersection with the account's current scopes", async () => {
    const { org, adminToken, sa } = await setup();
    const tok = await issueOk(adminToken, org.id, sa.id, { scopes: ["orgs.read", "service-accounts.read"] });
    expect(scopeOf((await exchange(tok.token)).json.jwt)).toBe("orgs.read service-accounts.read");
    // The account loses viewer and gets a role with service-accounts.read only.
    const role = await call("POST", `/api/v1/orgs/${org.id}/roles`, { token: adminToken, body: { name: "sa-reader", operations: ["service-accounts.read"] } });
    expectStatus(role, 201);
    const assignments = await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}/role-assignments`, { token: adminToken });
    expectStatus(await call("POST", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}/role-assignments`, { token: adminToken, body: { role: "sa-reader" } }), 201);
    for (const a of assignments.json.items) expectStatus(await call("DELETE", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}/role-assignments/${a.id}`, { token: adminToken }), 204);
    expect(scopeOf((await exchange(tok.token)).json.jwt)).toBe("service-accounts.read");
  });
});

describe("per-token restrictions: the console", () => {
  it("a session opened with a token with its own scopes keeps them (no wider than the token)", async () => {
    const { org, adminToken, sa } = await setup();
    const scoped = await issueOk(adminToken, org.id, sa.id, { scopes: ["service-accounts.read"] });
    const plain = await issueOk(adminToken, org.id, sa.id);
    const audit = `/console/orgs/${org.id}/audit`;
    const open = await consoleGet(audit, await consoleLogin(plain.token));
    expect(open.status, open.text.slice(0, 500)).toBe(200);
    const narrowed = await consoleGet(audit, await consoleLogin(scoped.token));
    expect(narrowed.status, narrowed.text.slice(0, 500)).toBe(403);
    const own = await consoleGet(`/console/orgs/${org.id}/service-accounts/${sa.id}`, await consoleLogin(scoped.token));
    expect(own.status, own.text.slice(0, 500)).toBe(200);
  });

  it("signing in spends a use; the session's pages do not", async () => {
    const { org, adminToken, sa } = await setup();
    const tok = await issueOk(adminToken, org.id, sa.id, { remainingUses: 1 });
    const cookie = await consoleLogin(tok.token);
    for (let i = 0; i < 3; i++) expect((await consoleGet(`/console/orgs/${org.id}/service-accounts/${sa.id}`, cookie)).status).toBe(200);
    expectUnauthenticated(await exchange(tok.token));
  });
});

describe("per-token restrictions: networks at use", () => {
  it("both the account's and the token's networks apply", async () => {
    const { org, adminToken, sa } = await setup({ allowedCidrs: ["10.0.0.0/8"] });
    const tok = await issueOk(adminToken, org.id, sa.id, { allowedCidrs: ["10.1.0.0/16"] });
    expectStatus(await exchange(tok.token, {}, "10.1.2.3"), 200);
    // Inside the account's network, outside the token's.
    expectUnauthenticated(await exchange(tok.token, {}, "10.2.0.1"));
    expectUnauthenticated(await exchange(tok.token, {}, "192.0.2.1"));
    expectUnauthenticated(await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}`, { token: tok.token, headers: { "cf-connecting-ip": "10.2.0.1" } }));
    const refused = (await auditOf(sa.id)).filter((e) => e.action === "credential.refused_network");
    expect(refused.length).toBeGreaterThanOrEqual(1);
    // Another token of the account, without networks of its own, works from anywhere in the account's.
    const plain = await issueOk(adminToken, org.id, sa.id);
    expectStatus(await exchange(plain.token, {}, "10.2.0.1"), 200);
  });
});

describe("per-token restrictions: remaining uses", () => {
  it("a one-time token works once; its exhaustion is audited once", async () => {
    const { org, adminToken, sa } = await setup();
    const tok = await issueOk(adminToken, org.id, sa.id, { remainingUses: 1 });
    expectStatus(await exchange(tok.token), 200);
    expectUnauthenticated(await exchange(tok.token));
    expectUnauthenticated(await readSelf(tok.token, org.id, sa.id));
    const exhausted = (await auditOf(tok.id)).filter((e) => e.action === "access_token.exhausted");
    expect(exhausted, JSON.stringify(exhausted)).toHaveLength(1);
    expect(exhausted[0]!.actor_id).toBe(sa.id);
    expect(exhausted[0]!.org_id).toBe(org.id);
    expect((await tokenDto(adminToken, org.id, sa.id, tok.id)).remainingUses).toBe(0);
  });

  it("the exhaustion is a token.exhausted webhook event, once", async () => {
    const { org, adminToken, sa } = await setup();
    const endpoint = await call("POST", hooks(org.id), { token: adminToken, body: { url: receiver().url, events: ["token.exhausted"] } });
    expectStatus(endpoint, 201);
    const tok = await issueOk(adminToken, org.id, sa.id, { remainingUses: 2 });
    for (let i = 0; i < 4; i++) await exchange(tok.token);
    const rows = (await deliveryRows(endpoint.json.id)).filter((r) => r.event_type === "token.exhausted");
    expect(rows, JSON.stringify(rows)).toHaveLength(1);
  });

  it("50 parallel exchanges against remainingUses 5 give exactly 5 successes", async () => {
    const { org, adminToken, sa } = await setup();
    const tok = await issueOk(adminToken, org.id, sa.id, { remainingUses: 5 });
    const results = await Promise.all(Array.from({ length: 50 }, () => exchange(tok.token)));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200), statuses.join(",")).toHaveLength(5);
    expect(statuses.filter((s) => s === 401), statuses.join(",")).toHaveLength(45);
    await waitForRemaining(tok.id, 0);
    expect((await auditOf(tok.id)).filter((e) => e.action === "access_token.exhausted")).toHaveLength(1);
  });

  it("50 parallel uses mixed over bearer, exchange and client_credentials give exactly 7 successes", async () => {
    const { org, adminToken, sa } = await setup();
    const tok = await issueOk(adminToken, org.id, sa.id, { remainingUses: 7 });
    const uses = Array.from({ length: 50 }, (_, i) =>
      i % 3 === 0 ? exchange(tok.token) : i % 3 === 1 ? readSelf(tok.token, org.id, sa.id) : postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [sa.id, tok.token] }),
    );
    const statuses = (await Promise.all(uses)).map((r) => r.status);
    expect(statuses.filter((s) => s === 200), statuses.join(",")).toHaveLength(7);
  });

  it("the caches never let a used-up token through, though its record is cached and still in KV", async () => {
    const { org, adminToken, sa } = await setup();
    const tok = await issueOk(adminToken, org.id, sa.id, { remainingUses: 3 });
    // Each use finds the record in this isolate's cache after the first.
    for (let i = 0; i < 3; i++) expectStatus(await readSelf(tok.token, org.id, sa.id), 200);
    expect(await env.TOKENS.get(await kvKeyOf(tok.token)), "the KV record stays").not.toBeNull();
    expectUnauthenticated(await readSelf(tok.token, org.id, sa.id));
    expectUnauthenticated(await exchange(tok.token));
    // An unlimited token of the same account is unaffected.
    const plain = await issueOk(adminToken, org.id, sa.id);
    for (let i = 0; i < 5; i++) expectStatus(await readSelf(plain.token, org.id, sa.id), 200);
  });

  it("a refused request spends nothing before the token is accepted (bad network); inspection spends nothing", async () => {
    const { org, adminToken, sa } = await setup();
    const tok = await issueOk(adminToken, org.id, sa.id, { remainingUses: 2, allowedCidrs: ["10.0.0.0/8"] });
    for (let i = 0; i < 5; i++) expectUnauthenticated(await exchange(tok.token, {}, "192.0.2.1"));
    // Introspection by another client of the org: a third party's question, not a use.
    const introspector = await issueOk(adminToken, org.id, sa.id);
    for (let i = 0; i < 3; i++) {
      const res = await postForm("/oauth/introspect", { token: tok.token }, { basic: [sa.id, introspector.token] });
      expectStatus(res, 200);
      expect(res.json.active, res.text).toBe(true);
    }
    expectStatus(await exchange(tok.token, {}, "10.0.0.1"), 200);
    expectStatus(await exchange(tok.token, {}, "10.0.0.1"), 200);
    expectUnauthenticated(await exchange(tok.token, {}, "10.0.0.1"));
    // Used up, it introspects as inactive, like a revoked token.
    const after = await postForm("/oauth/introspect", { token: tok.token }, { basic: [sa.id, introspector.token] });
    expect(after.json, after.text).toEqual({ active: false });
  });

  it("a refill sets the uses back to its amount once its interval has passed", async () => {
    const { org, adminToken, sa } = await setup();
    const tok = await issueOk(adminToken, org.id, sa.id, { remainingUses: 1, refill: { amount: 2, intervalSeconds: 1 } });
    expectStatus(await exchange(tok.token), 200);
    expectUnauthenticated(await exchange(tok.token));
    await sleep(1_100);
    expectStatus(await exchange(tok.token), 200);
    expectStatus(await exchange(tok.token), 200);
    expectUnauthenticated(await exchange(tok.token));
    // Each exhaustion is audited once: before the refill and after it.
    expect((await auditOf(tok.id)).filter((e) => e.action === "access_token.exhausted")).toHaveLength(2);
    // Unused periods do not accumulate: after several intervals it is the amount again, not more.
    await sleep(2_100);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await exchange(tok.token)).status);
    expect(statuses).toEqual([200, 200, 401, 401]);
  });

  it("regenerate keeps the restrictions and the count; the old secret dies", async () => {
    const { org, adminToken, sa } = await setup();
    const tok = await issueOk(adminToken, org.id, sa.id, { remainingUses: 3, scopes: ["service-accounts.read"] });
    expectStatus(await exchange(tok.token), 200);
    const res = await regenerate(adminToken, org.id, sa.id, tok.id);
    expectStatus(res, 200);
    expect(res.json, res.text).toMatchObject({ id: tok.id, scopes: ["service-accounts.read"] });
    expect(res.json.remainingUses, res.text).toBeLessThanOrEqual(3);
    expectUnauthenticated(await exchange(tok.token));
    const fresh = res.json.token as string;
    expect(scopeOf((await exchange(fresh)).json.jwt)).toBe("service-accounts.read");
    expectStatus(await exchange(fresh), 200);
    expectUnauthenticated(await exchange(fresh));
  });
});

describe("per-token restrictions: review", () => {
  it("?nearExhaustion=true lists live tokens with at most 1 or 10 % of their uses left", async () => {
    const { org, adminToken, sa } = await setup();
    const near = await issueOk(adminToken, org.id, sa.id, { remainingUses: 10, name: "near" });
    const last = await issueOk(adminToken, org.id, sa.id, { remainingUses: 2, name: "last" });
    const far = await issueOk(adminToken, org.id, sa.id, { remainingUses: 100, name: "far" });
    await issueOk(adminToken, org.id, sa.id, { name: "unlimited" });
    for (let i = 0; i < 9; i++) expectStatus(await exchange(near.token), 200);
    expectStatus(await exchange(last.token), 200);
    expectStatus(await exchange(far.token), 200);
    await waitForRemaining(near.id, 1);
    await waitForRemaining(last.id, 1);
    await waitForRemaining(far.id, 99);
    for (const path of [`/api/v1/orgs/${org.id}/tokens?nearExhaustion=true`, `${tokensPath(org.id, sa.id)}?nearExhaustion=true`]) {
      const res = await call("GET", path, { token: adminToken });
      expectStatus(res, 200);
      expect((res.json.items as { name: string }[]).map((t) => t.name).sort(), res.text).toEqual(["last", "near"]);
    }
    // A revoked token is no longer a candidate.
    expectStatus(await call("DELETE", `${tokensPath(org.id, sa.id)}/${last.id}`, { token: adminToken }), 204);
    const after = await call("GET", `${tokensPath(org.id, sa.id)}?nearExhaustion=true`, { token: adminToken });
    expect((after.json.items as { name: string }[]).map((t) => t.name), after.text).toEqual(["near"]);
  });
});
