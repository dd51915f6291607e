import { env } from "cloudflare:workers";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createCtx } from "../../src/domain/shared/context.ts";
import { hourOf, recordUse } from "../../src/domain/credentials/usage.ts";
import { call, expectStatus, platformRoot, unique } from "../helpers.ts";
import {
  accountRow,
  clockAhead,
  DAY_MS,
  eventually,
  expectMembership,
  idsOf,
  listTokenItems,
  MINUTE_MS,
  requestId,
  runJob,
  setColumns,
  tokenLastUsed,
  usageRows,
  type Res,
} from "./lifecycle-helpers.ts";
import { exchange } from "./oauth-helpers.ts";
import { expectDenied, expectProblem, expectUnauthenticated, listAll, newAccount } from "./registry-helpers.ts";
import { accountPath, freshOrg, issueOk, readSelf, revoke, setPolicy, tokensPath, viewerAccount } from "./token-helpers.ts";
import { resetIsolateState } from "../../src/domain/shared/isolate-state.ts";

// Each test starts like a fresh isolate: its first use flushes (the isolate then buffers for a minute).
beforeEach(() => resetIsolateState("usage-buffer"));

/** lastUsedAt and exchange counts (coalesced), the review filters, and the audit log. */

let root: { id: string; token: string };
let o: Awaited<ReturnType<typeof freshOrg>>;
beforeAll(async () => {
  root = await platformRoot();
  o = await freshOrg(root.token);
  await setPolicy(o.adminToken, o.org.id, { maxActiveTokensPerAccount: 10 });
});

afterEach(() => {
  vi.useRealTimers();
});

const usagePath = (org: string, sa: string) => `${accountPath(org, sa)}/usage`;
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function usage(sa: string, token = o.adminToken) {
  const res = await call("GET", usagePath(o.org.id, sa), { token });
  expectStatus(res, 200);
  expect(Object.keys(res.json).sort(), res.text).toEqual(["accountId", "exchanges24h", "exchanges30d", "lastUsedAt"]);
  return res.json as { accountId: string; lastUsedAt: string | null; exchanges24h: number; exchanges30d: number };
}

describe("lastUsedAt and exchange counts", () => {
  it("a token that authenticates sets lastUsedAt on itself and its account (written after the response), not an exchange", async () => {
    const sa = await viewerAccount(o.adminToken, o.org.id);
    const t = await issueOk(o.adminToken, o.org.id, sa.id);
    expect(await usage(sa.id)).toEqual({ accountId: sa.id, lastUsedAt: null, exchanges24h: 0, exchanges30d: 0 });
    const before = Date.now();
    resetIsolateState("usage-buffer"); // the admin calls above were this isolate's flush; start the minute afresh
    expectStatus(await readSelf(t.token, o.org.id, sa.id), 200);
    const after = Date.now();

    const at = await eventually(() => tokenLastUsed(t.id), "the token's lastUsedAt");
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(after);
    expect((await accountRow(sa.id))?.last_used_at, "the account's lastUsedAt").toBe(at);

    const { items, res } = await listTokenItems(tokensPath(o.org.id, sa.id), o.adminToken);
    expect(items.find((i) => i.id === t.id)?.lastUsedAt, res.text).toBe(iso(at));
    const account = await call("GET", accountPath(o.org.id, sa.id), { token: o.adminToken });
    expect(account.json.lastUsedAt, account.text).toBe(iso(at));
    expect(await usage(sa.id)).toEqual({ accountId: sa.id, lastUsedAt: iso(at), exchanges24h: 0, exchanges30d: 0 });
  });

  it("an exchange sets lastUsedAt and counts in exchanges24h and exchanges30d", async () => {
    const sa = await viewerAccount(o.adminToken, o.org.id);
    const t = await issueOk(o.adminToken, o.org.id, sa.id);
    resetIsolateState("usage-buffer"); // the admin calls above were this isolate's flush; start the minute afresh
    expectStatus(await exchange(t.token), 200);
    const at = await eventually(() => tokenLastUsed(t.id), "lastUsedAt after the exchange");
    expect((await accountRow(sa.id))?.last_used_at).toBe(at);
    expect(await usage(sa.id)).toEqual({ accountId: sa.id, lastUsedAt: iso(at), exchanges24h: 1, exchanges30d: 1 });
  });

  it("several uses within a minute cause one D1 write; the buffered ones are written with the next use after the minute", async () => {
    const sa = await viewerAccount(o.adminToken, o.org.id);
    const t = await issueOk(o.adminToken, o.org.id, sa.id);
    resetIsolateState("usage-buffer"); // the admin calls above were this isolate's flush; start the minute afresh
    for (let i = 0; i < 5; i++) expectStatus(await exchange(t.token), 200);
    await eventually(async () => ((await usageRows(sa.id)).length > 0 ? true : null), "the usage row");
    await sleep(200);
    const rows = await usageRows(sa.id);
    expect(rows.length, JSON.stringify(rows)).toBe(1);
    expect(rows[0]!.exchanges, JSON.stringify(rows)).toBeGreaterThanOrEqual(1);
    expect(rows[0]!.exchanges, JSON.stringify(rows)).toBeLessThanOrEqual(5);
    const u = await usage(sa.id);
    expect(u.exchanges24h, JSON.stringify(u)).toBe(rows[0]!.exchanges);

    // Within the same minute no further write happens at all: a sentinel written into D1 survives more uses.
    const sentinel = Date.now() - 7 * DAY_MS;
    await setColumns("access_tokens", t.id, { last_used_at: sentinel });
    await setColumns("service_accounts", sa.id, { last_used_at: sentinel });
    for (let i = 0; i < 3; i++) expectStatus(await readSelf(t.token, o.org.id, sa.id), 200);
    for (let i = 0; i < 2; i++) expectStatus(await exchange(t.token), 200);
    await sleep(300);
    expect(await tokenLastUsed(t.id), "token lastUsedAt rewritten within the minute").toBe(sentinel);
    expect((await accountRow(sa.id))?.last_used_at, "account lastUsedAt rewritten within the minute").toBe(sentinel);
    expect(await usageRows(sa.id)).toEqual(rows);

    // A minute later, the next use writes everything buffered: no exchange is lost.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + MINUTE_MS + 1_000);
    const later = Date.now();
    expectStatus(await exchange(t.token), 200);
    vi.useRealTimers();
    await eventually(async () => ((await tokenLastUsed(t.id)) === later ? true : null), "the write after the minute");
    const total = (await usageRows(sa.id)).reduce((n, r) => n + r.exchanges, 0);
    expect(total, JSON.stringify(await usageRows(sa.id))).toBe(8);
  });

  it("one flush writes thousands of buffered accounts (set-based statements of 1,000 ids), and lastUsedAt only moves forward", async () => {
    const sa = await viewerAccount(o.adminToken, o.org.id);
    const t = await issueOk(o.adminToken, o.org.id, sa.id);
    const later = await viewerAccount(o.adminToken, o.org.id);
    const future = Date.now() + DAY_MS; // written by another isolate whose clock is ahead
    await setColumns("service_accounts", later.id, { last_used_at: future });
    const pending: Promise<unknown>[] = [];
    let now = Date.now();
    const ctx = { ...createCtx(env, { actorId: "t", requestId: null, ip: null, userAgent: null }, (p) => void pending.push(p)), now: () => now };
    recordUse(ctx, { accountId: unique("sa_first") }); // this isolate's first use flushes at once
    await Promise.all(pending.splice(0));
    // 2,500 accounts: the real ones in the third statement; exchanges i % 3 (0 writes no counter).
    const fake = Array.from({ length: 2_498 }, (_, i) => `${unique("sa_bulk")}x${i}`);
    const ids = [...fake.slice(0, 2_100), sa.id, later.id, ...fake.slice(2_100)];
    ids.forEach((accountId, i) => {
      for (let k = 0; k < i % 3; k++) recordUse(ctx, { accountId, exchange: true });
      recordUse(ctx, { accountId, ...(accountId === sa.id ? { tokenId: t.id } : {}) });
    });
    expect(pending, "nothing written within the minute").toHaveLength(0);
    now += MINUTE_MS;
    recordUse(ctx, { accountId: unique("sa_last") });
    expect(pending).toHaveLength(1);
    await Promise.all(pending);
    expect((await accountRow(sa.id))?.last_used_at).toBe(now);
    expect(await tokenLastUsed(t.id)).toBe(now);
    expect((await accountRow(later.id))?.last_used_at, "a later lastUsedAt is kept").toBe(future);
    const { results } = await env.DB.prepare("select account_id, hour, exchanges from usage_counters where account_id in (select value from json_each(?))")
      .bind(JSON.stringify(ids))
      .all<{ account_id: string; hour: number; exchanges: number }>();
    const expected = ids.map((id, i) => [id, i % 3] as const).filter(([, n]) => n > 0);
    expect(results.length).toBe(expected.length);
    const byId = new Map(results.map((r) => [r.account_id, r]));
    for (const [id, n] of expected) expect(byId.get(id), id).toEqual({ account_id: id, hour: hourOf(now), exchanges: n });
    await env.DB.prepare("delete from usage_counters where account_id like 'sa_bulk%'").run();
  });

  it("GET .../usage: exchanges24h counts the last 24 hourly buckets, exchanges30d the last 30 days", async () => {
    const sa = await viewerAccount(o.adminToken, o.org.id);
    const h = hourOf(Date.now());
    const buckets: [number, number][] = [
      [h, 3],
      [h - 1, 4],
      [h - 30, 5],
      [h - 29 * 24, 7],
      [h - 31 * 24, 11],
      [h - 60 * 24, 13],
    ];
    await env.DB.batch(buckets.map(([hour, n]) => env.DB.prepare("insert into usage_counters (account_id, hour, exchanges) values (?, ?, ?)").bind(sa.id, hour, n)));
    const lastUsed = Date.now() - 2 * DAY_MS;
    await setColumns("service_accounts", sa.id, { last_used_at: lastUsed });
    expect(await usage(sa.id)).toEqual({ accountId: sa.id, lastUsedAt: iso(lastUsed), exchanges24h: 3 + 4, exchanges30d: 3 + 4 + 5 + 7 });
  });

  it("GET .../usage: 404 for another org's admin, 401 without a credential", async () => {
    const sa = await viewerAccount(o.adminToken, o.org.id);
    const other = await freshOrg(root.token);
    expectProblem(await call("GET", usagePath(o.org.id, sa.id), { token: other.adminToken }), 404);
    expectUnauthenticated(await call("GET", usagePath(o.org.id, sa.id)));
  });
});

describe("review filters: an account's tokens", () => {
  /** Nine tokens of one account, one per review case. */
  let f: Record<"in2d" | "in30d" | "never" | "revoked" | "jobExpired" | "pastExpiry" | "old" | "usedLately" | "usedLongAgo", string>;
  let path: string;
  beforeAll(async () => {
    const sa = await viewerAccount(o.adminToken, o.org.id);
    path = tokensPath(o.org.id, sa.id);
    const issue = async (body: Record<string, unknown> = {}) => (await issueOk(o.adminToken, o.org.id, sa.id, body)).id;
    const in2d = await issue({ expiresInSeconds: 2 * 86_400 });
    const in30d = await issue({ expiresInSeconds: 30 * 86_400 });
    const never = await issue();
    const revoked = await issue();
    expectStatus(await revoke(o.adminToken, o.org.id, sa.id, revoked), 204);
    // Expired by the job (D1 status "expired"), and past its expiry with the job not run yet (D1 status "active").
    const jobExpired = await issue({ expiresInSeconds: 60 });
    expect((await runJob("expireTokens", { now: clockAhead(2 * MINUTE_MS) })).processed).toBeGreaterThanOrEqual(1);
    const pastExpiry = await issue();
    await setColumns("access_tokens", pastExpiry, { expires_at: Date.now() - 1_000 });
    const old = await issue();
    const usedLately = await issue();
    const usedLongAgo = await issue();
    const longAgo = Date.now() - 40 * DAY_MS;
    await setColumns("access_tokens", old, { created_at: longAgo });
    await setColumns("access_tokens", usedLately, { created_at: longAgo, last_used_at: Date.now() - DAY_MS });
    await setColumns("access_tokens", usedLongAgo, { created_at: longAgo, last_used_at: Date.now() - 35 * DAY_MS });
    f = { in2d, in30d, never, revoked, jobExpired, pastExpiry, old, usedLately, usedLongAgo };
  });

  /** Lists with `query`: exactly `expected` among the fixtures (the other fixtures absent). */
  const check = async (query: Record<string, string | number>, expected: string[]) => {
    const { items, res } = await listTokenItems(path, o.adminToken, query);
    expectMembership(res, idsOf(items), expected, Object.values(f).filter((id) => !expected.includes(id)));
    return items;
  };

  it("no filter lists all of them, each with the status the API shows", async () => {
    const items = await check({}, Object.values(f));
    const status = Object.fromEntries(items.map((t) => [t.id, t.status]));
    expect([status[f.revoked], status[f.jobExpired], status[f.pastExpiry], status[f.in2d]], JSON.stringify(items)).toEqual(["revoked", "expired", "expired", "active"]);
  });

  it("expiringWithinDays: a token expiring in 2 days is listed with 7 and 31, not with 1; dead and non-expiring ones never", async () => {
    await check({ expiringWithinDays: 7 }, [f.in2d]);
    await check({ expiringWithinDays: 1 }, []);
    await check({ expiringWithinDays: 31 }, [f.in2d, f.in30d]);
  });

  it("unusedForDays counts from the last use, or from creation when never used", async () => {
    await check({ unusedForDays: 30 }, [f.old, f.usedLongAgo]);
    await check({ unusedForDays: 30, status: "active" }, [f.old, f.usedLongAgo]);
  });

  it("neverUsed=true lists the tokens that have never been used (false or absent: no filter)", async () => {
    await check({ neverUsed: "true" }, [f.in2d, f.in30d, f.never, f.revoked, f.jobExpired, f.pastExpiry, f.old]);
    await check({ neverUsed: "true", status: "active" }, [f.in2d, f.in30d, f.never, f.old]);
    await check({ neverUsed: "false" }, Object.values(f));
    expectProblem(await call("GET", `${path}?neverUsed=maybe`, { token: o.adminToken }), 400);
  });

  it("status=active and status=revoked", async () => {
    const active = await check({ status: "active" }, [f.in2d, f.in30d, f.never, f.old, f.usedLately, f.usedLongAgo]);
    expect(new Set(active.map((t) => t.status))).toEqual(new Set(["active"]));
    await check({ status: "revoked" }, [f.revoked]);
  });

  it("status=expired lists every token the API shows as expired: past its expiry, and already marked expired by the job", async () => {
    const expired = await check({ status: "expired" }, [f.jobExpired, f.pastExpiry]);
    expect(new Set(expired.map((t) => t.status))).toEqual(new Set(["expired"]));
  });

  it("bad filter values are 400", async () => {
    expectProblem(await call("GET", `${path}?expiringWithinDays=-1`, { token: o.adminToken }), 400);
    expectProblem(await call("GET", `${path}?status=lost`, { token: o.adminToken }), 400);
  });
});

describe("review filters: the org's tokens and accounts", () => {
  it("GET /api/v1/orgs/{org}/tokens lists across the org's accounts (filters apply), never another org's", async () => {
    const org = await freshOrg(root.token);
    const a = await viewerAccount(org.adminToken, org.org.id);
    const b = await viewerAccount(org.adminToken, org.org.id);
    const a1 = await issueOk(org.adminToken, org.org.id, a.id, { expiresInSeconds: 2 * 86_400 });
    const b1 = await issueOk(org.adminToken, org.org.id, b.id, { expiresInSeconds: 3 * 86_400 });
    const otherOrg = await freshOrg(root.token);
    const elsewhere = await viewerAccount(otherOrg.adminToken, otherOrg.org.id);
    const x1 = await issueOk(otherOrg.adminToken, otherOrg.org.id, elsewhere.id, { expiresInSeconds: 2 * 86_400 });
    const path = `/api/v1/orgs/${org.org.id}/tokens`;

    const everything = await listTokenItems(path, org.adminToken);
    expectMembership(everything.res, idsOf(everything.items), [a1.id, b1.id], [x1.id]);
    expect(new Set(everything.items.map((t) => t.accountId)), everything.res.text).toEqual(new Set([a.id, b.id, org.admin.id]));
    const soon = await listTokenItems(path, org.adminToken, { expiringWithinDays: 7 });
    expect(idsOf(soon.items).sort(), soon.res.text).toEqual([a1.id, b1.id].sort());
    const paged = await listAll(path, org.adminToken, 1);
    expect(idsOf(paged).sort()).toEqual(idsOf(everything.items).sort());
    expectProblem(await call("GET", path, { token: otherOrg.adminToken }), 404);
  });

  it("accounts: unusedForDays and status=disabled|expired|active", async () => {
    const make = () => viewerAccount(o.adminToken, o.org.id);
    const [old, usedLately, usedLongAgo, fresh, disabled, expired] = [await make(), await make(), await make(), await make(), await make(), await make()];
    const longAgo = Date.now() - 40 * DAY_MS;
    await setColumns("service_accounts", old.id, { created_at: longAgo });
    await setColumns("service_accounts", usedLately.id, { created_at: longAgo, last_used_at: Date.now() - 2 * DAY_MS });
    await setColumns("service_accounts", usedLongAgo.id, { created_at: longAgo, last_used_at: Date.now() - 31 * DAY_MS });
    expectStatus(await call("PATCH", accountPath(o.org.id, disabled.id), { token: o.adminToken, body: { status: "disabled" } }), 200);
    await setColumns("service_accounts", expired.id, { expires_at: Date.now() - 1_000 });
    const all = [old, usedLately, usedLongAgo, fresh, disabled, expired].map((a) => a.id);
    const check = async (query: string, expected: string[]) => {
      const res = await call("GET", `/api/v1/orgs/${o.org.id}/service-accounts?limit=200&${query}`, { token: o.adminToken });
      expectStatus(res, 200);
      expectMembership(res, idsOf(res.json.items), expected, all.filter((id) => !expected.includes(id)));
      return res.json.items as { id: string; status: string }[];
    };
    await check("unusedForDays=30", [old.id, usedLongAgo.id]);
    expect((await check("status=disabled", [disabled.id])).every((a) => a.status === "disabled")).toBe(true);
    expect((await check("status=expired", [expired.id])).every((a) => a.status === "expired")).toBe(true);
    await check("status=active", [old.id, usedLately.id, usedLongAgo.id, fresh.id]);
  });
});

describe("the audit log", () => {
  const IP = "203.0.113.7";

  /** A state-changing call with a chosen request id, client IP and user agent. */
  async function change(label: string, method: string, path: string, token: string, body?: unknown, sendRequestId = true) {
    const rid = requestId(label);
    const headers: Record<string, string> = { "cf-connecting-ip": IP, "user-agent": `keyward-tests/${label}` };
    if (sendRequestId) headers["x-request-id"] = rid;
    const res = await call(method, path, { token, body, headers });
    expect(res.status, `${label}: ${res.status} ${res.text}`).toBeLessThan(300);
    const sent = res.headers.get("x-request-id")!;
    if (sendRequestId) expect(sent, label).toBe(rid);
    return { res, rid: sent, label };
  }

  it("records every state change with actor, action, target, org, requestId, ip, userAgent and details; never a secret; filters; cursor pages", async () => {
    const slug = unique("aud");
    const orgRes = await change("org", "POST", "/api/v1/orgs", root.token, { slug, name: "Audited" });
    const orgId: string = orgRes.res.json.id;
    const adminRes = await change("admin", "POST", `/api/v1/orgs/${orgId}/service-accounts`, root.token, { name: "admin", roles: [{ role: "org-admin" }], issueToken: true });
    const admin: string = adminRes.res.json.id;
    const adminToken: string = adminRes.res.json.token.token;
    const sas = `/api/v1/orgs/${orgId}/service-accounts`;
    const policy = await change("policy", "PATCH", `/api/v1/orgs/${orgId}`, adminToken, { policy: { maxActiveTokensPerAccount: 3 } });
    const worker = await change("worker", "POST", sas, adminToken, { name: "worker", roles: [{ role: "viewer" }] });
    const w: string = worker.res.json.id;
    const issued = await change("issue", "POST", `${sas}/${w}/tokens`, adminToken, {}, false);
    const tokenId: string = issued.res.json.id;
    const regen = await change("regen", "POST", `${sas}/${w}/tokens/${tokenId}/regenerate`, adminToken, { graceSeconds: 0 });
    const second = await change("second", "POST", `${sas}/${w}/tokens`, adminToken, { name: "second" });
    await sleep(5);
    const mark = new Date().toISOString();
    await sleep(5);
    const revoked = await change("revoke", "DELETE", `${sas}/${w}/tokens/${second.res.json.id}`, adminToken);
    const disable = await change("disable", "PATCH", `${sas}/${w}`, adminToken, { status: "disabled" });
    await sleep(5);
    const mark2 = new Date().toISOString();
    await sleep(5);
    const enable = await change("enable", "PATCH", `${sas}/${w}`, adminToken, { status: "active" });
    const project = await change("project", "POST", `/api/v1/orgs/${orgId}/projects`, adminToken, { slug: unique("prj"), name: "P" });
    const temp = await change("temp", "POST", sas, adminToken, { name: "temp" });
    const removed = await change("delete", "DELETE", `${sas}/${temp.res.json.id}`, adminToken);
    const secrets = [adminToken, issued.res.json.token, regen.res.json.token, second.res.json.token];

    const expected: [typeof orgRes, string, string[], string][] = [
      [orgRes, root.id, ["org.created"], orgId],
      [adminRes, root.id, ["service_account.created", "role_assignment.created", "access_token.created"], admin],
      [policy, admin, ["org.updated"], orgId],
      [worker, admin, ["service_account.created", "role_assignment.created"], w],
      [issued, admin, ["access_token.created"], tokenId],
      [regen, admin, ["access_token.regenerated"], tokenId],
      [second, admin, ["access_token.created"], second.res.json.id],
      [revoked, admin, ["access_token.revoked"], second.res.json.id],
      [disable, admin, ["service_account.disabled"], w],
      [enable, admin, ["service_account.enabled"], w],
      [project, admin, ["project.created"], project.res.json.id],
      [temp, admin, ["service_account.created"], temp.res.json.id],
      [removed, admin, ["service_account.deleted"], temp.res.json.id],
    ];
    const path = `/api/v1/orgs/${orgId}/audit-events`;
    const events = await listAll(path, adminToken, 200);
    const text = JSON.stringify(events);
    for (const [call_, actor, actions, target] of expected) {
      const mine = events.filter((e) => e.requestId === call_.rid);
      expect(mine.map((e) => e.action).sort(), `${call_.label} (${call_.rid}): ${text}`).toEqual([...actions].sort());
      for (const e of mine) {
        const msg = `${call_.label}: ${JSON.stringify(e)}`;
        expect(e, msg).toMatchObject({ orgId, actorId: actor, ip: IP, userAgent: `keyward-tests/${call_.label}` });
        expect(typeof e.details === "object" && e.details !== null && !Array.isArray(e.details), msg).toBe(true);
        expect(JSON.stringify(e.details).length, msg).toBeLessThan(1_024);
        expect(e.target.type, msg).toBeTypeOf("string");
        expect(Date.parse(e.createdAt), msg).not.toBeNaN();
      }
      expect(mine.map((e) => e.target.id), `${call_.label}: ${JSON.stringify(mine)}`).toContain(target);
    }
    // Every event of the org's log comes from one of these requests.
    expect(events.filter((e) => !expected.some(([c]) => c.rid === e.requestId)), text).toEqual([]);
    for (const s of secrets) expect(text.includes(s), `a secret in the audit log: ${s.slice(0, 8)}…`).toBe(false);
    expect(text, "nothing shaped like a secret").not.toMatch(/sat_[0-9A-Za-z]{20,}/);

    // Newest first; pages of 2 give the same events, in the same order, without duplicates.
    const times = events.map((e) => Date.parse(e.createdAt));
    expect(times, text).toEqual([...times].sort((x, y) => y - x));
    const paged = await listAll(path, adminToken, 2);
    expect(idsOf(paged), "pages of 2").toEqual(idsOf(events));
    expect(new Set(idsOf(paged)).size).toBe(paged.length);

    const query = async (qs: string) => {
      const res = await call("GET", `${path}?limit=200&${qs}`, { token: adminToken });
      expectStatus(res, 200);
      return res;
    };
    const rids = (res: Res) => new Set<string>(res.json.items.map((e: { requestId: string }) => e.requestId));
    const byActor = await query(`actor=${root.id}`);
    expect(rids(byActor), byActor.text).toEqual(new Set([orgRes.rid, adminRes.rid]));
    const oneAction = await query("action=access_token.revoked");
    expect(oneAction.json.items.map((e: any) => [e.action, e.target.id]), oneAction.text).toEqual([["access_token.revoked", second.res.json.id]]);
    const family = await query(`action=${encodeURIComponent("access_token.*")}`);
    expect(family.json.items.map((e: any) => e.action).sort(), family.text).toEqual(
      ["access_token.created", "access_token.created", "access_token.created", "access_token.regenerated", "access_token.revoked"].sort(),
    );
    const accounts = await query(`action=${encodeURIComponent("service_account.*")}`);
    expect(accounts.json.items.every((e: any) => e.action.startsWith("service_account.")), accounts.text).toBe(true);
    expect(accounts.json.items.length, accounts.text).toBe(6);
    const target = await query(`target=${tokenId}`);
    expect(target.json.items.map((e: any) => e.action), target.text).toEqual(["access_token.regenerated", "access_token.created"]);
    const since = await query(`since=${encodeURIComponent(mark)}`);
    expect(rids(since), since.text).toEqual(new Set([revoked, disable, enable, project, temp, removed].map((c) => c.rid)));
    const until = await query(`until=${encodeURIComponent(mark)}`);
    expect(rids(until), until.text).toEqual(new Set([orgRes, adminRes, policy, worker, issued, regen, second].map((c) => c.rid)));
    const window = await query(`since=${encodeURIComponent(mark)}&until=${encodeURIComponent(mark2)}`);
    expect(rids(window), window.text).toEqual(new Set([revoked.rid, disable.rid]));
    expectProblem(await call("GET", `${path}?since=yesterday`, { token: adminToken }), 400);
  });

  it("audit.read decides: a viewer reads the log, a service-account-admin gets 403, another org's admin 404, no credential 401", async () => {
    const viewer = await newAccount(o.adminToken, o.org.id, { roles: [{ role: "viewer" }] });
    const saAdmin = await newAccount(o.adminToken, o.org.id, { roles: [{ role: "service-account-admin" }] });
    const other = await freshOrg(root.token);
    const path = `/api/v1/orgs/${o.org.id}/audit-events`;
    const res = await call("GET", path, { token: viewer.token });
    expectStatus(res, 200);
    expect(res.json.items.length, res.text).toBeGreaterThan(0);
    expect(res.json.items.every((e: { orgId: string }) => e.orgId === o.org.id), res.text).toBe(true);
    expectDenied(await call("GET", path, { token: saAdmin.token }), ["audit.read"]);
    expectProblem(await call("GET", path, { token: other.adminToken }), 404);
    expectUnauthenticated(await call("GET", path));
    // The other org's own log does not show this org's events.
    const theirs = await listAll(`/api/v1/orgs/${other.org.id}/audit-events`, other.adminToken);
    expect(theirs.filter((e) => e.orgId !== other.org.id), JSON.stringify(theirs)).toEqual([]);
  });

  it("platform events: a key rotation is in GET /api/v1/audit-events for root (and an org's creation is in the org's log, not there); 403 for others", async () => {
    const rid = requestId("rotate");
    const rotated = await call("POST", "/api/v1/admin/signing-keys/rotate", { token: root.token, body: {}, headers: { "x-request-id": rid, "cf-connecting-ip": IP, "user-agent": "keyward-tests/rotate" } });
    expectStatus(rotated, 200);
    const kid: string = rotated.json.kid;
    const res = await call("GET", `/api/v1/audit-events?action=signing_key.rotated&target=${encodeURIComponent(kid)}`, { token: root.token });
    expectStatus(res, 200);
    expect(res.json.items.length, res.text).toBe(1);
    expect(res.json.items[0], res.text).toMatchObject({ orgId: null, actorId: root.id, action: "signing_key.rotated", target: { type: "signing_key", id: kid }, requestId: rid, ip: IP, userAgent: "keyward-tests/rotate" });

    const platform = await listAll("/api/v1/audit-events", root.token);
    expect(platform.filter((e) => e.orgId !== null), JSON.stringify(platform)).toEqual([]);
    expect(platform.some((e) => e.target.id === o.org.id), "an org's creation is not a platform event").toBe(false);
    const orgLog = await call("GET", `/api/v1/orgs/${o.org.id}/audit-events?action=org.created`, { token: root.token });
    expectStatus(orgLog, 200);
    expect(orgLog.json.items.map((e: any) => [e.actorId, e.target.id]), orgLog.text).toEqual([[root.id, o.org.id]]);

    const viewer = await newAccount(o.adminToken, o.org.id, { roles: [{ role: "viewer" }] });
    expectDenied(await call("GET", "/api/v1/audit-events", { token: o.adminToken }), ["platform.root"]);
    expectProblem(await call("GET", "/api/v1/audit-events", { token: viewer.token }), 403);
    expectUnauthenticated(await call("GET", "/api/v1/audit-events"));
  });
});
