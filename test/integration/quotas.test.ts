import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { call, expectStatus, platformRoot } from "../helpers.ts";
import { freshOrg, setPolicy, viewerAccount } from "./token-helpers.ts";
import { expectProblem, newAccount, type Res } from "./registry-helpers.ts";
import { postForm } from "./oauth-helpers.ts";
import { hourOf } from "../../src/domain/credentials/usage.ts";
import { resetIsolateState } from "../../src/domain/shared/isolate-state.ts";

/**
 * Issue 20, issuance quotas: at most N JWTs per minute and per day for an account (its own quota,
 * or its org policy's default); over it 429 with Retry-After and the RateLimit headers, on the
 * management API's exchange and on /oauth/token alike.
 */

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

const exchange = (token: string) => call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: token } });
const grant = (clientId: string, secret: string) => postForm("/oauth/token", { grant_type: "client_credentials" }, { basic: [clientId, secret] });

async function accountWith(jwtQuota?: Record<string, number>, policy?: Record<string, unknown>) {
  const { org, adminToken } = await freshOrg(root.token);
  if (policy) await setPolicy(adminToken, org.id, policy);
  const { account, token } = await newAccount(adminToken, org.id, { roles: [{ role: "viewer" }], ...(jwtQuota ? { jwtQuota } : {}) });
  return { org, adminToken, account: account as { id: string; jwtQuota: unknown }, token };
}

function expectQuotaHeaders(res: Res, limit: number, window: number) {
  const retryAfter = Number(res.headers.get("retry-after"));
  expect(retryAfter, res.text).toBeGreaterThanOrEqual(1);
  expect(retryAfter, res.text).toBeLessThanOrEqual(window);
  expect(res.headers.get("ratelimit"), res.text).toBe(`limit=${limit}, remaining=0, reset=${retryAfter}`);
  expect(res.headers.get("ratelimit-policy"), res.text).toBe(`${limit};w=${window}`);
}

describe("JWT quota per minute", () => {
  it("the account's own quota: N JWTs a minute, then 429 jwt_quota_exceeded with Retry-After and RateLimit headers", async () => {
    const { account, token } = await accountWith({ perMinute: 3 });
    expect(account.jwtQuota).toEqual({ perMinute: 3 });
    for (let i = 0; i < 3; i++) expectStatus(await exchange(token), 200);
    const res = await exchange(token);
    expectProblem(res, 429, "jwt_quota_exceeded");
    expectQuotaHeaders(res, 3, 60);
    // The OAuth surface answers in RFC 6749's shape, with the same headers.
    const oauth = await grant(account.id, token);
    expect(oauth.status, oauth.text).toBe(429);
    expect(oauth.json.error, oauth.text).toBe("slow_down");
    expectQuotaHeaders(oauth, 3, 60);
  });

  it("counts every JWT of the account, whatever the grant; other accounts are not affected", async () => {
    const { account, token, adminToken, org } = await accountWith({ perMinute: 4 });
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((i % 2 === 0 ? await exchange(token) : await grant(account.id, token)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
    const other = await newAccount(adminToken, org.id, { roles: [{ role: "viewer" }] });
    for (let i = 0; i < 6; i++) expectStatus(await exchange(other.token), 200);
  });

  it("parallel requests in one isolate never get more than N", async () => {
    const { token } = await accountWith({ perMinute: 5 });
    const statuses = (await Promise.all(Array.from({ length: 20 }, () => exchange(token)))).map((r) => r.status);
    expect(statuses.filter((s) => s === 200), statuses.join(",")).toHaveLength(5);
    expect(statuses.filter((s) => s === 429), statuses.join(",")).toHaveLength(15);
  });

  it("a refused exchange (a scope not allowed) counts nothing", async () => {
    const { token } = await accountWith({ perMinute: 2 });
    for (let i = 0; i < 3; i++) expect((await call("POST", "/api/auth/access-tokens/jwt", { body: { access_token: token, scope: "roles.edit" } })).status).toBe(400);
    expectStatus(await exchange(token), 200);
    expectStatus(await exchange(token), 200);
    expectProblem(await exchange(token), 429, "jwt_quota_exceeded");
  });
});

describe("JWT quota: org default", () => {
  it("applies to accounts without their own; an account's own quota overrides it", async () => {
    const { org, adminToken, token } = await accountWith(undefined, { jwtQuota: { perMinute: 2 } });
    const orgRead = await call("GET", `/api/v1/orgs/${org.id}`, { token: adminToken });
    expect(orgRead.json.policy.jwtQuota, orgRead.text).toEqual({ perMinute: 2 });
    expectStatus(await exchange(token), 200);
    expectStatus(await exchange(token), 200);
    expectProblem(await exchange(token), 429, "jwt_quota_exceeded");
    const own = await newAccount(adminToken, org.id, { roles: [{ role: "viewer" }], jwtQuota: { perMinute: 4 } });
    for (let i = 0; i < 4; i++) expectStatus(await exchange(own.token), 200);
    expectProblem(await exchange(own.token), 429, "jwt_quota_exceeded");
  });

  it("PATCH sets and clears an account's quota; null falls back to the org's (none here)", async () => {
    const { org, adminToken, account, token } = await accountWith();
    const path = `/api/v1/orgs/${org.id}/service-accounts/${account.id}`;
    const set = await call("PATCH", path, { token: adminToken, body: { jwtQuota: { perMinute: 1 } } });
    expectStatus(set, 200);
    expect(set.json.jwtQuota, set.text).toEqual({ perMinute: 1 });
    expectStatus(await exchange(token), 200);
    expectProblem(await exchange(token), 429, "jwt_quota_exceeded");
    const cleared = await call("PATCH", path, { token: adminToken, body: { jwtQuota: null } });
    expect(cleared.json.jwtQuota, cleared.text).toBeNull();
    for (let i = 0; i < 3; i++) expectStatus(await exchange(token), 200);
  });

  it("validates quotas: positive integers, at least one bound, nothing else", async () => {
    const { org, adminToken } = await freshOrg(root.token);
    const sa = await viewerAccount(adminToken, org.id);
    for (const jwtQuota of [{}, { perMinute: 0 }, { perDay: -1 }, { perMinute: 1.5 }, { perHour: 3 }, "10"]) {
      expectProblem(await call("PATCH", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}`, { token: adminToken, body: { jwtQuota } }), 400, "validation_failed");
      expectProblem(await call("PATCH", `/api/v1/orgs/${org.id}`, { token: adminToken, body: { policy: { jwtQuota } } }), 400, "validation_failed");
    }
  });
});

describe("JWT quota per day", () => {
  it("N JWTs a day, then 429 with a Retry-After to the next hour and the day's policy", async () => {
    const { token } = await accountWith({ perDay: 2, perMinute: 100 });
    expectStatus(await exchange(token), 200);
    expectStatus(await exchange(token), 200);
    const res = await exchange(token);
    expectProblem(res, 429, "jwt_quota_exceeded");
    expectQuotaHeaders(res, 2, 86_400);
    expect(Number(res.headers.get("retry-after"))).toBeLessThanOrEqual(3_600);
  });

  it("counts what D1 recorded in the last 24 hours (other isolates' JWTs), not older", async () => {
    const { account, token } = await accountWith({ perDay: 5 });
    const hour = hourOf(Date.now());
    // Four JWTs recorded by other isolates within the day, and many more than a day ago.
    await env.DB.batch([
      env.DB.prepare("insert into usage_counters (account_id, hour, exchanges) values (?, ?, ?)").bind(account.id, hour - 3, 4),
      env.DB.prepare("insert into usage_counters (account_id, hour, exchanges) values (?, ?, ?)").bind(account.id, hour - 30, 1000),
    ]);
    resetIsolateState("jwt-quotas");
    expectStatus(await exchange(token), 200);
    expectProblem(await exchange(token), 429, "jwt_quota_exceeded");
  });
});
