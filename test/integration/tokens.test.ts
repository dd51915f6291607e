import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { generateAccessToken } from "../../src/domain/credentials/access-token.ts";
import { call, expectStatus, platformRoot, unique } from "../helpers.ts";
import { expectProblem, expectUnauthenticated } from "./registry-helpers.ts";
import {
  auditOf,
  DAY_MS,
  expectDead,
  expectWorks,
  freshOrg,
  issue,
  issueOk,
  kvKeyOf,
  kvKeys,
  near,
  readSelf,
  regenerate,
  revoke,
  setPolicy,
  sha256,
  tokenPath,
  tokenRow,
  tokenRows,
  tokensPath,
  viewerAccount,
} from "./token-helpers.ts";

/** Access tokens over HTTP: issue, list, the one-active-token rule, policy, revoke, regenerate, storage, audit. */

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

/** A fresh org, its admin, and a fresh viewer account without a token. */
async function setup() {
  const o = await freshOrg(root.token);
  const sa = await viewerAccount(o.adminToken, o.org.id);
  return { ...o, sa };
}

const TOKEN_RE = /^sat_[0-9A-Za-z]{32}[0-9A-Za-z]{6}$/;

describe("issue", () => {
  it("201 with the secret (once), a hint and the token's metadata; no expiry by default", async () => {
    const { org, admin, adminToken, sa } = await setup();
    const before = Date.now();
    const res = await issue(adminToken, org.id, sa.id, { name: "ci" });
    expectStatus(res, 201);
    const t = res.json;
    expect(t.id, res.text).toMatch(/^tok_[0-9A-Za-z]+$/);
    expect(t.token, res.text).toMatch(TOKEN_RE);
    expect(t.hint, res.text).toBe(`${t.token.slice(0, 8)}\u2026${t.token.slice(-4)}`);
    expect(t, res.text).toMatchObject({ accountId: sa.id, name: "ci", status: "active", expiresAt: null, revokedAt: null, regeneratedAt: null, previousSecretExpiresAt: null, createdBy: admin.id });
    expect(Date.parse(t.createdAt), res.text).toBeGreaterThanOrEqual(before - 1000);
    expect(res.headers.get("cache-control") ?? "", res.text).toMatch(/no-store/);
  });

  it("expiresInSeconds sets expiresAt to now + that many seconds", async () => {
    const { org, adminToken, sa } = await setup();
    const res = await issue(adminToken, org.id, sa.id, { expiresInSeconds: 3600 });
    expectStatus(res, 201);
    expect(near(res.json.expiresAt, Date.now() + 3_600_000, 15_000), res.text).toBe(true);
  });

  it("expiresAt sets that instant", async () => {
    const { org, adminToken, sa } = await setup();
    const at = new Date(Date.now() + 2 * DAY_MS);
    at.setUTCMilliseconds(0);
    const res = await issue(adminToken, org.id, sa.id, { expiresAt: at.toISOString() });
    expectStatus(res, 201);
    expect(Date.parse(res.json.expiresAt), res.text).toBe(at.getTime());
    const row = await tokenRow(res.json.id);
    expect(row?.expires_at, JSON.stringify(row)).toBe(at.getTime());
  });

  it("expiresAt and expiresInSeconds together: 400, nothing issued", async () => {
    const { org, adminToken, sa } = await setup();
    const res = await issue(adminToken, org.id, sa.id, { expiresInSeconds: 3600, expiresAt: new Date(Date.now() + DAY_MS).toISOString() });
    expectProblem(res, 400, "validation_failed");
    expect(res.text).not.toMatch(/sat_/);
    expect(await tokenRows(sa.id), "no token row").toEqual([]);
  });

  it.each([
    ["expiresAt in the past", { expiresAt: new Date(Date.now() - 60_000).toISOString() }],
    ["expiresInSeconds below 60", { expiresInSeconds: 59 }],
    ["expiresInSeconds zero", { expiresInSeconds: 0 }],
    ["expiresInSeconds negative", { expiresInSeconds: -10 }],
    ["expiresInSeconds not an integer", { expiresInSeconds: 90.5 }],
    ["expiresAt not a date", { expiresAt: "tomorrow" }],
    ["an unknown field", { secret: "sat_mine" }],
  ])("%s: 400", async (_label, body) => {
    const { org, adminToken, sa } = await setup();
    const res = await issue(adminToken, org.id, sa.id, body);
    expectProblem(res, 400, "validation_failed");
    expect(await tokenRows(sa.id), "no token row").toEqual([]);
  });

  it("the secret authenticates as the account", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id);
    const res = await readSelf(t.token, org.id, sa.id);
    expectStatus(res, 200);
    expect(res.json.id, res.text).toBe(sa.id);
  });

  it("issuing needs the edit permission: another org's admin 404, a viewer 403, anonymous 401", async () => {
    const { org, adminToken, sa } = await setup();
    const other = await freshOrg(root.token);
    expectProblem(await issue(other.adminToken, org.id, sa.id), 404, "not_found");
    expectProblem(await issue(other.adminToken, other.org.id, sa.id), 404, "not_found");
    const viewer = await issueOk(adminToken, org.id, sa.id);
    const second = await viewerAccount(adminToken, org.id);
    const denied = await issue(viewer.token, org.id, second.id);
    expectProblem(denied, 403, "permission_denied");
    expect(await tokenRows(second.id), "no token row").toEqual([]);
    expectUnauthenticated(await call("POST", tokensPath(org.id, second.id), { body: {} }));
  });
});

describe("list", () => {
  it("shows hints only: no token field, and the secret appears nowhere in the body", async () => {
    const { org, adminToken, sa } = await setup();
    await setPolicy(adminToken, org.id, { maxActiveTokensPerAccount: 2 });
    const a = await issueOk(adminToken, org.id, sa.id, { name: "a" });
    const b = await issueOk(adminToken, org.id, sa.id, { name: "b" });
    const res = await call("GET", tokensPath(org.id, sa.id), { token: adminToken });
    expectStatus(res, 200);
    expect(res.json.items.map((i: any) => i.id).sort(), res.text).toEqual([a.id, b.id].sort());
    for (const item of res.json.items) {
      expect(item, res.text).not.toHaveProperty("token");
      expect(item, res.text).not.toHaveProperty("secret");
      expect(item, res.text).not.toHaveProperty("secretHash");
      expect(item.hint, res.text).toBe(item.id === a.id ? a.hint : b.hint);
    }
    for (const secret of [a.token, b.token]) {
      expect(res.text.includes(secret), res.text).toBe(false);
      expect(res.text.includes(secret.slice(8, -4)), res.text).toBe(false);
      expect(res.text.includes(await sha256(secret)), res.text).toBe(false);
    }
    // The account's own (viewer) token may list, with the same hints-only view.
    const own = await call("GET", tokensPath(org.id, sa.id), { token: a.token });
    expectStatus(own, 200);
    expect(own.text.includes(a.token) || own.text.includes(b.token), own.text).toBe(false);
  });
});

describe("the one-active-token rule", () => {
  it("a second issue is 409 token_limit_reached; the first token keeps working", async () => {
    const { org, adminToken, sa } = await setup();
    const first = await issueOk(adminToken, org.id, sa.id);
    const second = await issue(adminToken, org.id, sa.id);
    expectProblem(second, 409, "token_limit_reached");
    expect(second.text).not.toMatch(/sat_[0-9A-Za-z]{30}/);
    const rows = await tokenRows(sa.id);
    expect(rows.map((r) => r.id), JSON.stringify(rows)).toEqual([first.id]);
    await expectWorks(first.token, org.id, sa.id);
  });

  it("counts the token issued with the account (issueToken: true)", async () => {
    const { org, adminToken } = await freshOrg(root.token);
    const created = await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, {
      token: adminToken,
      body: { name: unique("sa"), roles: [{ role: "viewer" }], issueToken: true },
    });
    expectStatus(created, 201);
    expect(created.json.token?.token, created.text).toMatch(TOKEN_RE);
    expectProblem(await issue(adminToken, org.id, created.json.id), 409, "token_limit_reached");
  });

  it("a revoked token frees the slot", async () => {
    const { org, adminToken, sa } = await setup();
    const first = await issueOk(adminToken, org.id, sa.id);
    expectStatus(await revoke(adminToken, org.id, sa.id, first.id), 204);
    const second = await issueOk(adminToken, org.id, sa.id);
    expect(second.id).not.toBe(first.id);
    expectProblem(await issue(adminToken, org.id, sa.id), 409, "token_limit_reached");
  });

  it("with maxActiveTokensPerAccount 3, three succeed and the fourth is 409", async () => {
    const { org, adminToken, sa } = await setup();
    await setPolicy(adminToken, org.id, { maxActiveTokensPerAccount: 3 });
    const issued = [];
    for (let i = 0; i < 3; i++) issued.push(await issueOk(adminToken, org.id, sa.id, { name: `t${i}` }));
    expect(new Set(issued.map((t) => t.token)).size).toBe(3);
    const fourth = await issue(adminToken, org.id, sa.id);
    expectProblem(fourth, 409, "token_limit_reached");
    for (const t of issued) await expectWorks(t.token, org.id, sa.id);
    const active = (await tokenRows(sa.id)).filter((r) => r.status === "active");
    expect(active.length, JSON.stringify(active)).toBe(3);
  });
});

describe("policy: maxTokenLifetimeDays", () => {
  it("no expiry requested: expiresAt is the cap", async () => {
    const { org, adminToken, sa } = await setup();
    await setPolicy(adminToken, org.id, { maxTokenLifetimeDays: 7 });
    const t = await issueOk(adminToken, org.id, sa.id);
    expect(near(t.expiresAt, Date.now() + 7 * DAY_MS), JSON.stringify(t)).toBe(true);
  });

  it("more than the cap: 400 token_lifetime_exceeded (never clipped), by either field", async () => {
    const { org, adminToken, sa } = await setup();
    await setPolicy(adminToken, org.id, { maxTokenLifetimeDays: 7, maxActiveTokensPerAccount: 2 });
    expectProblem(await issue(adminToken, org.id, sa.id, { expiresInSeconds: 8 * 86_400 }), 400, "token_lifetime_exceeded");
    expectProblem(await issue(adminToken, org.id, sa.id, { expiresAt: new Date(Date.now() + 7 * DAY_MS + 3_600_000).toISOString() }), 400, "token_lifetime_exceeded");
    expect(await tokenRows(sa.id), "nothing issued").toEqual([]);
    const within = await issueOk(adminToken, org.id, sa.id, { expiresInSeconds: 6 * 86_400 });
    expect(near(within.expiresAt, Date.now() + 6 * DAY_MS), JSON.stringify(within)).toBe(true);
    // Exactly the cap is allowed.
    const exact = await issueOk(adminToken, org.id, sa.id, { expiresInSeconds: 7 * 86_400 });
    expect(near(exact.expiresAt, Date.now() + 7 * DAY_MS), JSON.stringify(exact)).toBe(true);
  });

  it("also caps the token issued with the account", async () => {
    const { org, adminToken } = await freshOrg(root.token);
    await setPolicy(adminToken, org.id, { maxTokenLifetimeDays: 3 });
    const created = await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, { token: adminToken, body: { name: unique("sa"), issueToken: true } });
    expectStatus(created, 201);
    expect(near(created.json.token.expiresAt, Date.now() + 3 * DAY_MS), created.text).toBe(true);
  });
});

describe("the account's validity bounds its tokens (issue 16)", () => {
  it("an explicit expiry past the account's is 400 token_lifetime_exceeded naming the account's expiry, by either field; nothing is issued", async () => {
    const { org, adminToken } = await freshOrg(root.token);
    await setPolicy(adminToken, org.id, { maxActiveTokensPerAccount: 3 });
    const sa = await viewerAccount(adminToken, org.id, { daysValid: 10 });
    const accountExpiry = Date.parse((await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}`, { token: adminToken })).json.expiresAt);
    for (const body of [{ expiresInSeconds: 11 * 86_400 }, { expiresAt: new Date(accountExpiry + 60_000).toISOString() }]) {
      const res = await issue(adminToken, org.id, sa.id, body);
      const problem = expectProblem(res, 400, "token_lifetime_exceeded");
      expect(problem.detail, res.text).toContain(new Date(accountExpiry).toISOString());
      expect(problem.detail, res.text).toMatch(/account/);
    }
    expect(await tokenRows(sa.id), "nothing issued").toEqual([]);
    // Up to the account's expiry is fine.
    const exact = await issueOk(adminToken, org.id, sa.id, { expiresAt: new Date(accountExpiry).toISOString() });
    expect(Date.parse(exact.expiresAt!)).toBe(accountExpiry);
    const within = await issueOk(adminToken, org.id, sa.id, { expiresInSeconds: 9 * 86_400 });
    expect(near(within.expiresAt, Date.now() + 9 * DAY_MS), JSON.stringify(within)).toBe(true);
  });

  it("no expiry requested on an expiring account: the token gets the account's expiry (or the policy's cap, whichever is sooner)", async () => {
    const { org, adminToken } = await freshOrg(root.token);
    const sa = await viewerAccount(adminToken, org.id, { daysValid: 10 });
    const accountExpiry = (await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}`, { token: adminToken })).json.expiresAt;
    const t = await issueOk(adminToken, org.id, sa.id);
    expect(t.expiresAt, JSON.stringify(t)).toBe(accountExpiry);
    // The policy cap wins when it is sooner; the account's expiry when it is.
    await setPolicy(adminToken, org.id, { maxTokenLifetimeDays: 3, maxActiveTokensPerAccount: 3 });
    expect(near((await issueOk(adminToken, org.id, sa.id)).expiresAt, Date.now() + 3 * DAY_MS)).toBe(true);
    await setPolicy(adminToken, org.id, { maxTokenLifetimeDays: 30 });
    expect((await issueOk(adminToken, org.id, sa.id)).expiresAt).toBe(accountExpiry);
  });

  it("the same at creation: issueToken past daysValid is 400 and creates nothing; without an expiry it gets the account's", async () => {
    const { org, adminToken } = await freshOrg(root.token);
    const name = unique("sa");
    const refused = await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, { token: adminToken, body: { name, daysValid: 2, issueToken: { expiresInSeconds: 3 * 86_400 } } });
    expectProblem(refused, 400, "token_lifetime_exceeded");
    expect((await call("GET", `/api/v1/orgs/${org.id}/service-accounts?q=${name}`, { token: adminToken })).json.items).toEqual([]);
    const created = await call("POST", `/api/v1/orgs/${org.id}/service-accounts`, { token: adminToken, body: { name, daysValid: 2, issueToken: true } });
    expectStatus(created, 201);
    expect(created.json.token.expiresAt, created.text).toBe(created.json.expiresAt);
  });

  it("the policy's refusal says the cap and how to stay within it", async () => {
    const { org, adminToken, sa } = await setup();
    await setPolicy(adminToken, org.id, { maxTokenLifetimeDays: 7 });
    const res = await issue(adminToken, org.id, sa.id, { expiresInSeconds: 8 * 86_400 });
    const problem = expectProblem(res, 400, "token_lifetime_exceeded");
    expect(problem.detail, res.text).toMatch(/7 days/);
    expect(problem.detail, res.text).toMatch(/ask for that or less/);
  });
});

describe("revoke", () => {
  it("204; the secret is 401 at once; D1 and KV agree; revoking again is 204", async () => {
    const { org, admin, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id);
    await expectWorks(t.token, org.id, sa.id);
    const res = await revoke(adminToken, org.id, sa.id, t.id);
    expectStatus(res, 204);
    expect(res.text).toBe("");
    await expectDead(t.token, org.id, sa.id, "after revoke");
    expect(await env.TOKENS.get(await kvKeyOf(t.token)), "KV record of a revoked token").toBeNull();
    const row = await tokenRow(t.id);
    expect(row?.status, JSON.stringify(row)).toBe("revoked");
    expect(row?.revoked_by, JSON.stringify(row)).toBe(admin.id);
    expect(row?.revoked_at, JSON.stringify(row)).toBeTypeOf("number");
    const again = await revoke(adminToken, org.id, sa.id, t.id);
    expectStatus(again, 204);
    await expectDead(t.token, org.id, sa.id, "after the second revoke");
    const list = await call("GET", tokensPath(org.id, sa.id), { token: adminToken });
    expectStatus(list, 200);
    expect(list.json.items, list.text).toHaveLength(1);
    expect(list.json.items[0], list.text).toMatchObject({ id: t.id, status: "revoked" });
    expect(list.json.items[0].revokedAt, list.text).not.toBeNull();
  });

  it("an unknown token id: 404", async () => {
    const { org, adminToken, sa } = await setup();
    expectProblem(await revoke(adminToken, org.id, sa.id, "tok_doesNotExist0000000000"), 404, "not_found");
    expectProblem(await revoke(adminToken, org.id, sa.id, "garbage"), 404, "not_found");
  });

  it("a token of another account (wrong path) or another org: 404, and the token still works", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id);
    const otherSa = await viewerAccount(adminToken, org.id);
    expectProblem(await revoke(adminToken, org.id, otherSa.id, t.id), 404, "not_found");
    expectProblem(await regenerate(adminToken, org.id, otherSa.id, t.id), 404, "not_found");
    const other = await freshOrg(root.token);
    expectProblem(await revoke(other.adminToken, org.id, sa.id, t.id), 404, "not_found");
    expectProblem(await revoke(other.adminToken, other.org.id, sa.id, t.id), 404, "not_found");
    expectProblem(await regenerate(other.adminToken, org.id, sa.id, t.id), 404, "not_found");
    await expectWorks(t.token, org.id, sa.id);
    expect((await tokenRow(t.id))?.status).toBe("active");
  });

  it("a viewer may not revoke (403) and an anonymous caller gets 401", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id);
    expectProblem(await revoke(t.token, org.id, sa.id, t.id), 403, "permission_denied");
    expectUnauthenticated(await call("DELETE", tokenPath(org.id, sa.id, t.id)));
    await expectWorks(t.token, org.id, sa.id);
  });
});

describe("regenerate", () => {
  it("200 with a new secret, same id, same expiry; the old secret is 401 at once, the new one works", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id, { expiresInSeconds: 7200, name: "rot" });
    const res = await regenerate(adminToken, org.id, sa.id, t.id);
    expectStatus(res, 200);
    const n = res.json;
    expect(n.token, res.text).toMatch(TOKEN_RE);
    expect(n.token, res.text).not.toBe(t.token);
    expect(n, res.text).toMatchObject({ id: t.id, accountId: sa.id, name: "rot", status: "active", expiresAt: t.expiresAt, previousSecretExpiresAt: null });
    expect(n.hint, res.text).toBe(`${n.token.slice(0, 8)}\u2026${n.token.slice(-4)}`);
    expect(n.regeneratedAt, res.text).not.toBeNull();
    await expectDead(t.token, org.id, sa.id, "old secret after regenerate");
    await expectWorks(n.token, org.id, sa.id, "new secret after regenerate");
    expect(await env.TOKENS.get(await kvKeyOf(t.token)), "old KV record").toBeNull();
    expect(await env.TOKENS.get(await kvKeyOf(n.token)), "new KV record").not.toBeNull();
    const row = await tokenRow(t.id);
    expect(row?.secret_hash, JSON.stringify(row)).toBe(await sha256(n.token));
    expect(row?.expires_at, JSON.stringify(row)).toBe(Date.parse(t.expiresAt!));
    // Regenerating does not take a second slot.
    expectProblem(await issue(adminToken, org.id, sa.id), 409, "token_limit_reached");
  });

  it("without a body, and for a token without expiry", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id);
    const res = await call("POST", `${tokenPath(org.id, sa.id, t.id)}/regenerate`, { token: adminToken });
    expectStatus(res, 200);
    expect(res.json.expiresAt, res.text).toBeNull();
    await expectDead(t.token, org.id, sa.id);
    await expectWorks(res.json.token, org.id, sa.id);
  });

  it("graceSeconds 300: both secrets work and previousSecretExpiresAt is set", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id, { expiresInSeconds: 86_400 });
    const res = await regenerate(adminToken, org.id, sa.id, t.id, { graceSeconds: 300 });
    expectStatus(res, 200);
    expect(res.json.id, res.text).toBe(t.id);
    expect(res.json.expiresAt, res.text).toBe(t.expiresAt);
    expect(near(res.json.previousSecretExpiresAt, Date.now() + 300_000, 15_000), res.text).toBe(true);
    await expectWorks(t.token, org.id, sa.id, "old secret during the grace");
    await expectWorks(res.json.token, org.id, sa.id, "new secret");
    // The old secret's KV record ends with the grace, not with the token.
    const old = await env.TOKENS.get<{ expiresAt: number; tokenId: string }>(await kvKeyOf(t.token), "json");
    expect(old?.tokenId, JSON.stringify(old)).toBe(t.id);
    expect(old?.expiresAt, JSON.stringify(old)).toBe(Date.parse(res.json.previousSecretExpiresAt));
    const list = await call("GET", tokensPath(org.id, sa.id), { token: adminToken });
    expect(list.json.items[0].previousSecretExpiresAt, list.text).toBe(res.json.previousSecretExpiresAt);
    expect(list.json.items[0].hint, list.text).toBe(res.json.hint);
  });

  it("the grace never outlives the token itself", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id, { expiresInSeconds: 120 });
    const res = await regenerate(adminToken, org.id, sa.id, t.id, { graceSeconds: 3600 });
    expectStatus(res, 200);
    expect(Date.parse(res.json.previousSecretExpiresAt), res.text).toBeLessThanOrEqual(Date.parse(t.expiresAt!));
  });

  it("revoking during a grace kills both secrets", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id);
    const n = await regenerate(adminToken, org.id, sa.id, t.id, { graceSeconds: 300 });
    expectStatus(n, 200);
    expectStatus(await revoke(adminToken, org.id, sa.id, t.id), 204);
    await expectDead(t.token, org.id, sa.id, "grace secret after revoke");
    await expectDead(n.json.token, org.id, sa.id, "current secret after revoke");
    expect(await env.TOKENS.get(await kvKeyOf(t.token)), "old KV record").toBeNull();
    expect(await env.TOKENS.get(await kvKeyOf(n.json.token)), "new KV record").toBeNull();
  });

  it("regenerating again ends the previous grace: only the newest secret works", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id);
    const second = await regenerate(adminToken, org.id, sa.id, t.id, { graceSeconds: 300 });
    expectStatus(second, 200);
    const third = await regenerate(adminToken, org.id, sa.id, t.id, { graceSeconds: 0 });
    expectStatus(third, 200);
    await expectDead(t.token, org.id, sa.id, "first secret");
    await expectDead(second.json.token, org.id, sa.id, "second secret");
    await expectWorks(third.json.token, org.id, sa.id, "third secret");
    expect(third.json.previousSecretExpiresAt, third.text).toBeNull();
  });

  it.each([
    ["graceSeconds over 86400", { graceSeconds: 86_401 }],
    ["graceSeconds negative", { graceSeconds: -1 }],
    ["graceSeconds not an integer", { graceSeconds: 1.5 }],
    ["an unknown field", { expiresAt: new Date(Date.now() + DAY_MS).toISOString() }],
  ])("%s: 400 and the secret is unchanged", async (_label, body) => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id);
    expectProblem(await regenerate(adminToken, org.id, sa.id, t.id, body), 400, "validation_failed");
    await expectWorks(t.token, org.id, sa.id);
    expect((await tokenRow(t.id))?.secret_hash).toBe(await sha256(t.token));
  });

  it("graceSeconds of exactly 86400 is accepted", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id);
    const res = await regenerate(adminToken, org.id, sa.id, t.id, { graceSeconds: 86_400 });
    expectStatus(res, 200);
    expect(near(res.json.previousSecretExpiresAt, Date.now() + DAY_MS), res.text).toBe(true);
  });

  it("a revoked token: 409 token_not_active, and it stays dead", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id);
    expectStatus(await revoke(adminToken, org.id, sa.id, t.id), 204);
    const res = await regenerate(adminToken, org.id, sa.id, t.id);
    expectProblem(res, 409, "token_not_active");
    expect(res.text).not.toMatch(/sat_[0-9A-Za-z]{30}/);
    await expectDead(t.token, org.id, sa.id);
    expect((await tokenRow(t.id))?.status).toBe("revoked");
  });

  it("an unknown token: 404; a viewer: 403", async () => {
    const { org, adminToken, sa } = await setup();
    expectProblem(await regenerate(adminToken, org.id, sa.id, "tok_doesNotExist0000000000"), 404, "not_found");
    const t = await issueOk(adminToken, org.id, sa.id);
    expectProblem(await regenerate(t.token, org.id, sa.id, t.id), 403, "permission_denied");
    await expectWorks(t.token, org.id, sa.id);
  });
});

describe("security: forged and unknown secrets", () => {
  it("a wrong checksum is 401", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id);
    const last = t.token.at(-1)!;
    const bad = t.token.slice(0, -1) + (last === "A" ? "B" : "A");
    expectUnauthenticated(await readSelf(bad, org.id, sa.id));
    await expectWorks(t.token, org.id, sa.id);
  });

  it("a wrong checksum is refused before any storage lookup (even with a KV record under its hash)", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id);
    const record = await env.TOKENS.get(await kvKeyOf(t.token));
    expect(record, "KV record of the real token").not.toBeNull();
    const forged = t.token.slice(0, 10) + (t.token[10] === "x" ? "y" : "x") + t.token.slice(11);
    const forgedKey = await kvKeyOf(forged);
    await env.TOKENS.put(forgedKey, record!);
    try {
      expectUnauthenticated(await readSelf(forged, org.id, sa.id));
    } finally {
      await env.TOKENS.delete(forgedKey);
    }
  });

  it("a well-formed (right checksum) but unknown token is 401", async () => {
    const { org, sa } = await setup();
    const res = await readSelf(generateAccessToken(), org.id, sa.id);
    expectUnauthenticated(res);
    expectUnauthenticated(await call("GET", "/api/v1/orgs", { token: generateAccessToken() }));
  });

  it("the hint, the hash, or the secret with whitespace inside do not authenticate", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id);
    expectUnauthenticated(await readSelf(await sha256(t.token), org.id, sa.id));
    expectUnauthenticated(await readSelf(t.token.slice(0, 20) + " " + t.token.slice(20), org.id, sa.id));
    const hint = await call("GET", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}`, { headers: { authorization: `Bearer ${encodeURIComponent(t.hint)}` } });
    expectUnauthenticated(hint);
  });
});

describe("security: dead credentials", () => {
  it("a KV record past its expiresAt (KV expiry is lazy) does not authenticate, and the token cannot be regenerated", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id, { expiresInSeconds: 3600 });
    const key = await kvKeyOf(t.token);
    const record = await env.TOKENS.get<Record<string, unknown>>(key, "json");
    expect(record).not.toBeNull();
    const past = Date.now() - 1000;
    await env.TOKENS.put(key, JSON.stringify({ ...record, expiresAt: past, tokenExpiresAt: past }));
    await env.DB.prepare("update access_tokens set expires_at = ? where id = ?").bind(past, t.id).run();
    await expectDead(t.token, org.id, sa.id, "expired token");
    expectProblem(await regenerate(adminToken, org.id, sa.id, t.id), 409, "token_not_active");
    // An expired token no longer takes the account's slot.
    const next = await issueOk(adminToken, org.id, sa.id);
    await expectWorks(next.token, org.id, sa.id);
    const list = await call("GET", tokensPath(org.id, sa.id), { token: adminToken });
    expect(list.json.items.find((i: any) => i.id === t.id)?.status, list.text).toBe("expired");
  });

  it("disabling the account kills its tokens at once and refuses new ones; re-enabling restores them", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id);
    const off = await call("PATCH", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}`, { token: adminToken, body: { status: "disabled" } });
    expectStatus(off, 200);
    await expectDead(t.token, org.id, sa.id, "disabled account");
    expectProblem(await issue(adminToken, org.id, sa.id), 409, "account_not_active");
    const on = await call("PATCH", `/api/v1/orgs/${org.id}/service-accounts/${sa.id}`, { token: adminToken, body: { status: "active" } });
    expectStatus(on, 200);
    await expectWorks(t.token, org.id, sa.id, "re-enabled account");
  });
});

describe("the secret is stored only as a hash", () => {
  it("KV key tok:<sha256 hex> exists; no KV key or value, D1 row or audit row holds the secret", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id);
    const regen = await regenerate(adminToken, org.id, sa.id, t.id, { graceSeconds: 300 });
    expectStatus(regen, 200);
    const secrets = [t.token, regen.json.token as string];
    for (const secret of secrets) {
      const key = `tok:${await sha256(secret)}`;
      const record = await env.TOKENS.get<{ tokenId: string; account: { accountId: string } }>(key, "json");
      expect(record, `KV ${key}`).not.toBeNull();
      expect(record!.tokenId).toBe(t.id);
      expect(record!.account.accountId).toBe(sa.id);
    }
    const row = await tokenRow(t.id);
    expect(row?.secret_hash, JSON.stringify(row)).toBe(await sha256(secrets[1]!));
    expect(row?.previous_secret_hash, JSON.stringify(row)).toBe(await sha256(secrets[0]!));

    const contains = (text: string) => secrets.filter((s) => text.includes(s) || text.includes(s.slice(4, 36)));
    const keys = await kvKeys("");
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(contains(key), `KV key ${key}`).toEqual([]);
    for (let i = 0; i < keys.length; i += 50) {
      const values = await Promise.all(keys.slice(i, i + 50).map(async (k) => [k, (await env.TOKENS.get(k)) ?? ""] as const));
      for (const [k, v] of values) expect(contains(v), `KV value of ${k}: ${v.slice(0, 200)}`).toEqual([]);
    }
    for (const table of ["access_tokens", "audit_events", "service_accounts"]) {
      const { results } = await env.DB.prepare(`select * from ${table}`).all();
      const text = JSON.stringify(results);
      expect(contains(text), `a row of ${table} holds a secret`).toEqual([]);
    }
  });
});

describe("audit", () => {
  it("issue, regenerate and revoke each write an event with actor, request id and no secret", async () => {
    const { org, admin, adminToken, sa } = await setup();
    const rid = () => `test-${unique("rid")}`;
    const ids = { issue: rid(), regen: rid(), regenGrace: rid(), revoke: rid() };
    const issued = await call("POST", tokensPath(org.id, sa.id), { token: adminToken, body: { name: "audited" }, headers: { "x-request-id": ids.issue } });
    expectStatus(issued, 201);
    expect(issued.headers.get("x-request-id")).toBe(ids.issue);
    const tok = issued.json.id as string;
    const r1 = await call("POST", `${tokenPath(org.id, sa.id, tok)}/regenerate`, { token: adminToken, body: { graceSeconds: 300 }, headers: { "x-request-id": ids.regenGrace } });
    expectStatus(r1, 200);
    const r2 = await call("POST", `${tokenPath(org.id, sa.id, tok)}/regenerate`, { token: adminToken, body: {}, headers: { "x-request-id": ids.regen } });
    expectStatus(r2, 200);
    const rv = await call("DELETE", tokenPath(org.id, sa.id, tok), { token: adminToken, headers: { "x-request-id": ids.revoke } });
    expectStatus(rv, 204);
    const secrets = [issued.json.token, r1.json.token, r2.json.token] as string[];

    const events = await auditOf(tok);
    const dump = JSON.stringify(events);
    const byRequest = (requestId: string) => events.filter((e) => e.request_id === requestId);
    const expected: [string, string][] = [
      [ids.issue, "access_token.created"],
      [ids.regenGrace, "access_token.regenerated"],
      [ids.regen, "access_token.regenerated"],
      [ids.revoke, "access_token.revoked"],
    ];
    for (const [requestId, action] of expected) {
      const found = byRequest(requestId);
      expect(found.length, `${action} for ${requestId}: ${dump}`).toBe(1);
      expect(found[0], dump).toMatchObject({ action, actor_id: admin.id, org_id: org.id, target_type: "access_token", target_id: tok });
    }
    for (const s of secrets) {
      expect(dump.includes(s), dump).toBe(false);
      expect(dump.includes(s.slice(4, 36)), dump).toBe(false);
      expect(dump.includes(await sha256(s)), `audit holds a secret hash: ${dump}`).toBe(false);
    }
  });

  it("a refused issue (409) writes no token event and leaves no row", async () => {
    const { org, adminToken, sa } = await setup();
    const t = await issueOk(adminToken, org.id, sa.id);
    const before = await env.DB.prepare("select count(*) as n from audit_events where action = 'access_token.created' and org_id = ?").bind(org.id).first<{ n: number }>();
    expectProblem(await issue(adminToken, org.id, sa.id), 409, "token_limit_reached");
    const after = await env.DB.prepare("select count(*) as n from audit_events where action = 'access_token.created' and org_id = ?").bind(org.id).first<{ n: number }>();
    expect(after?.n).toBe(before?.n);
    expect((await tokenRows(sa.id)).map((r) => r.id)).toEqual([t.id]);
  });
});
