import { createExecutionContext, createScheduledController, runDurableObjectAlarm, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { JOBS } from "../../src/cron/index.ts";
import { hourOf } from "../../src/domain/credentials/usage.ts";
import { JTI_PURGE_EVERY_MS, type AccountCredentials } from "../../src/durable-objects/account-credentials.ts";
import worker from "../../src/index.ts";
import { call, expectStatus, platformRoot, unique } from "../helpers.ts";
import { clockAhead, DAY_MS, eventually, HOUR_MS, jobResult, kvRecordOf, listTokenItems, MINUTE_MS, runJob, setColumns, tokenLastUsed } from "./lifecycle-helpers.ts";
import { servedJwks } from "./oauth-helpers.ts";
import { expectDenied, expectProblem, expectUnauthenticated, newAccount, newOrg } from "./registry-helpers.ts";
import { auditOf, expectDead, expectWorks, freshOrg, issueOk, kvKeyOf, readSelf, regenerate, setPolicy, tokenRow, tokensPath, viewerAccount } from "./token-helpers.ts";
import { resetIsolateState } from "../../src/domain/shared/isolate-state.ts";

/**
 * The scheduled jobs one by one: each job's effect, and its idempotence (a second run at the same
 * instant changes nothing). Time is advanced by handing the jobs a clock ahead of the real one, or
 * by writing past dates into D1; this file's storage is its own, so neither leaks elsewhere.
 */

let root: { id: string; token: string };
let o: Awaited<ReturnType<typeof freshOrg>>;
beforeAll(async () => {
  root = await platformRoot();
  o = await freshOrg(root.token);
});

afterEach(() => {
  vi.restoreAllMocks();
});

const JOB_NAMES = ["expireTokens", "expireAccounts", "expireKeys", "revokeUnused", "reconcile", "purge", "rotateKeys", "expiryNotices", "webhookOutbox"];

/** Audit events of one action about a target, straight from D1, with parsed details. */
async function eventsOf(targetId: string, action: string) {
  return (await auditOf(targetId)).filter((e) => e.action === action).map((e) => ({ ...e, details: JSON.parse(e.details) as Record<string, unknown> }));
}

/** The status the API shows for one token of an account. */
async function apiStatus(adminToken: string, orgId: string, accountId: string, tokenId: string) {
  const { items, res } = await listTokenItems(tokensPath(orgId, accountId), adminToken);
  const item = items.find((t) => t.id === tokenId);
  expect(item, `token ${tokenId} not listed: ${res.text}`).toBeDefined();
  return item!.status;
}

describe("expireTokens", () => {
  it("marks a token past its expiry expired: API status, KV entries (the grace secret's too) gone, refused, one audit event", async () => {
    const sa = await viewerAccount(o.adminToken, o.org.id);
    const t = await issueOk(o.adminToken, o.org.id, sa.id, { expiresInSeconds: 120 });
    const regen = await regenerate(o.adminToken, o.org.id, sa.id, t.id, { graceSeconds: 60 });
    expectStatus(regen, 200);
    const current: string = regen.json.token;
    const keeper = await viewerAccount(o.adminToken, o.org.id);
    const kept = await issueOk(o.adminToken, o.org.id, keeper.id);

    // At the real clock nothing of this is due.
    await runJob("expireTokens");
    expect((await tokenRow(t.id))?.status).toBe("active");
    // Both secrets are live in KV. (Not used here: an isolate may cache a record it has just read.)
    expect(await env.TOKENS.get(await kvKeyOf(current)), "KV entry of the current secret before").not.toBeNull();
    expect(await env.TOKENS.get(await kvKeyOf(t.token)), "KV entry of the grace secret before").not.toBeNull();

    const later = clockAhead(5 * MINUTE_MS);
    const first = await runJob("expireTokens", { now: later });
    expect(first.processed, JSON.stringify(first)).toBeGreaterThanOrEqual(1);
    expect(first.more, JSON.stringify(first)).toBe(false);

    const row = await tokenRow(t.id);
    expect(row?.status, JSON.stringify(row)).toBe("expired");
    expect(row?.previous_secret_hash, JSON.stringify(row)).toBeNull();
    expect(await env.TOKENS.get(await kvKeyOf(current)), "KV entry of the current secret").toBeNull();
    expect(await env.TOKENS.get(await kvKeyOf(t.token)), "KV entry of the grace secret").toBeNull();
    // The real clock is still before the token's expiry: only the job can have killed it.
    await expectDead(current, o.org.id, sa.id, "after expireTokens");
    await expectDead(t.token, o.org.id, sa.id, "grace secret after expireTokens");
    expect(await apiStatus(o.adminToken, o.org.id, sa.id, t.id)).toBe("expired");

    const events = await eventsOf(t.id, "access_token.expired");
    expect(events.length, JSON.stringify(events)).toBe(1);
    expect(events[0]!.actor_id, JSON.stringify(events)).toBe("system");
    expect(events[0]!.org_id, JSON.stringify(events)).toBe(o.org.id);
    expect(events[0]!.details, JSON.stringify(events)).toMatchObject({ accountId: sa.id, expiresAt: row!.expires_at });

    // A token without expiry is untouched.
    expect((await tokenRow(kept.id))?.status).toBe("active");
    await expectWorks(kept.token, o.org.id, keeper.id, "token without expiry");

    // Idempotence: the same run again changes nothing.
    const second = await runJob("expireTokens", { now: later });
    expect(second, JSON.stringify(second)).toMatchObject({ processed: 0, more: false });
    expect(await tokenRow(t.id)).toEqual(row);
    expect((await eventsOf(t.id, "access_token.expired")).length).toBe(1);
  });
});

describe("expireAccounts", () => {
  it("an account past its validity (clock advanced past daysValid) loses every token, audited with reason 'account expired'", async () => {
    const created = await call("POST", `/api/v1/orgs/${o.org.id}/service-accounts`, {
      token: o.adminToken,
      body: { name: unique("short"), roles: [{ role: "viewer" }], daysValid: 1, issueToken: true },
    });
    expectStatus(created, 201);
    const sa = created.json.id as string;
    const tokenId = created.json.token.id as string;
    const secret = created.json.token.token as string;
    const control = await newAccount(o.adminToken, o.org.id, { roles: [{ role: "viewer" }] });

    const early = await runJob("expireAccounts", { now: clockAhead(12 * HOUR_MS) });
    expect((await tokenRow(tokenId))?.status, JSON.stringify(early)).toBe("active");

    const later = clockAhead(2 * DAY_MS);
    const first = await runJob("expireAccounts", { now: later });
    expect(first.processed, JSON.stringify(first)).toBeGreaterThanOrEqual(1);
    expect(first.revoked, JSON.stringify(first)).toBeGreaterThanOrEqual(1);

    const row = await tokenRow(tokenId);
    expect(row?.status, JSON.stringify(row)).toBe("revoked");
    expect(row?.revoked_by, JSON.stringify(row)).toBe("system");
    expect(await env.TOKENS.get(await kvKeyOf(secret)), "KV entry after expireAccounts").toBeNull();
    // At the real clock the account is still within its validity: only the job can have killed the token.
    await expectDead(secret, o.org.id, sa, "token of an expired account");
    expect(await apiStatus(o.adminToken, o.org.id, sa, tokenId)).toBe("revoked");
    const events = await eventsOf(tokenId, "access_token.revoked");
    expect(events.length, JSON.stringify(events)).toBe(1);
    expect(events[0]!.details.reason, JSON.stringify(events)).toBe("account expired");
    expect(events[0]!.actor_id, JSON.stringify(events)).toBe("system");

    await expectWorks(control.token, o.org.id, control.account.id, "an account without validity");

    const second = await runJob("expireAccounts", { now: later });
    expect(second, JSON.stringify(second)).toMatchObject({ processed: 0, more: false, revoked: 0 });
    expect(await tokenRow(tokenId)).toEqual(row);
    expect((await eventsOf(tokenId, "access_token.revoked")).length).toBe(1);
  });

  it("an account whose expires_at is in the past in D1 (its KV claims not knowing) loses its tokens at the real clock", async () => {
    const { account, token } = await newAccount(o.adminToken, o.org.id, { roles: [{ role: "viewer" }] });
    const tokenId = account.token.id as string;
    await setColumns("service_accounts", account.id, { expires_at: Date.now() - DAY_MS });
    // The edge only reads KV, which still holds the old claims.
    await expectWorks(token, o.org.id, account.id, "before the job (drift)");

    const first = await runJob("expireAccounts");
    expect(first.revoked, JSON.stringify(first)).toBeGreaterThanOrEqual(1);
    expect((await tokenRow(tokenId))?.status).toBe("revoked");
    await expectDead(token, o.org.id, account.id, "after expireAccounts");
    const events = await eventsOf(tokenId, "access_token.revoked");
    expect(events.map((e) => e.details.reason), JSON.stringify(events)).toEqual(["account expired"]);

    const second = await runJob("expireAccounts");
    expect(second, JSON.stringify(second)).toMatchObject({ processed: 0, revoked: 0 });
  });
});

describe("revokeUnused", () => {
  it("revokes tokens unused for the org policy's unusedTokenRevokeAfterDays, and none in an org without the policy", async () => {
    // Root drives everything: the orgs' own admin tokens would be unused too.
    const on = await newOrg(root.token);
    await setPolicy(root.token, on.id, { unusedTokenRevokeAfterDays: 30 });
    const off = await newOrg(root.token);
    const a = await newAccount(root.token, on.id, { roles: [{ role: "viewer" }] });
    const b = await newAccount(root.token, off.id, { roles: [{ role: "viewer" }] });
    const aToken = a.account.token.id as string;
    const bToken = b.account.token.id as string;

    const before = await runJob("revokeUnused", { now: clockAhead(29 * DAY_MS) });
    expect((await tokenRow(aToken))?.status, `29 days is within the policy: ${JSON.stringify(before)}`).toBe("active");

    const later = clockAhead(31 * DAY_MS);
    const first = await runJob("revokeUnused", { now: later });
    expect(first.processed, JSON.stringify(first)).toBeGreaterThanOrEqual(1);
    const row = await tokenRow(aToken);
    expect(row?.status, JSON.stringify(row)).toBe("revoked");
    expect(await env.TOKENS.get(await kvKeyOf(a.token)), "KV entry of the unused token").toBeNull();
    await expectDead(a.token, on.id, a.account.id, "unused token");
    const events = await eventsOf(aToken, "access_token.revoked");
    expect(events.length, JSON.stringify(events)).toBe(1);
    expect(events[0]!.details.reason, JSON.stringify(events)).toBe("unused");
    expect(events[0]!.actor_id, JSON.stringify(events)).toBe("system");

    // The org without the policy keeps its equally unused token.
    expect((await tokenRow(bToken))?.status).toBe("active");
    await expectWorks(b.token, off.id, b.account.id, "org without the policy");

    const second = await runJob("revokeUnused", { now: later });
    expect(second, JSON.stringify(second)).toMatchObject({ processed: 0, more: false });
    expect(await tokenRow(aToken)).toEqual(row);
    expect((await eventsOf(aToken, "access_token.revoked")).length).toBe(1);
  });

  it("counts from the last use when there is one (written into D1, or recorded by a real use), else from creation", async () => {
    const org = await newOrg(root.token);
    await setPolicy(root.token, org.id, { unusedTokenRevokeAfterDays: 30 });
    const never = await newAccount(root.token, org.id, { roles: [{ role: "viewer" }] });
    const usedLately = await newAccount(root.token, org.id, { roles: [{ role: "viewer" }] });
    const usedNow = await newAccount(root.token, org.id, { roles: [{ role: "viewer" }] });
    const usedLongAgo = await newAccount(root.token, org.id, { roles: [{ role: "viewer" }] });
    const old = Date.now() - 40 * DAY_MS;
    await setColumns("access_tokens", never.account.token.id, { created_at: old });
    await setColumns("access_tokens", usedLately.account.token.id, { created_at: old, last_used_at: Date.now() - 2 * DAY_MS });
    await setColumns("access_tokens", usedLongAgo.account.token.id, { created_at: old, last_used_at: Date.now() - 31 * DAY_MS });
    await setColumns("access_tokens", usedNow.account.token.id, { created_at: old });
    // A real use records lastUsedAt (off the response path); as in a fresh isolate, it is flushed at once.
    resetIsolateState("usage-buffer");
    expectStatus(await readSelf(usedNow.token, org.id, usedNow.account.id), 200);
    await eventually(() => tokenLastUsed(usedNow.account.token.id), "lastUsedAt of the used token");

    const first = await runJob("revokeUnused");
    expect(first.processed, JSON.stringify(first)).toBe(2);
    expect((await tokenRow(never.account.token.id))?.status, "never used, created 40 days ago").toBe("revoked");
    expect((await tokenRow(usedLongAgo.account.token.id))?.status, "last used 31 days ago").toBe("revoked");
    expect((await tokenRow(usedLately.account.token.id))?.status, "last used 2 days ago").toBe("active");
    expect((await tokenRow(usedNow.account.token.id))?.status, "used just now").toBe("active");
    await expectWorks(usedNow.token, org.id, usedNow.account.id);
    await expectDead(never.token, org.id, never.account.id);
    expect(await runJob("revokeUnused"), "second run").toMatchObject({ processed: 0 });
  });
});

describe("purge", () => {
  async function insertEvent(createdAt: number, orgId: string | null) {
    const id = `evt_${unique("purge").replace("-", "")}`;
    await env.DB.prepare(
      "insert into audit_events (id, org_id, actor_id, action, target_type, target_id, request_id, ip, user_agent, details, created_at) values (?, ?, 'test', 'test.purge', 'test', ?, null, null, null, '{}', ?)",
    )
      .bind(id, orgId, id, createdAt)
      .run();
    return id;
  }
  const eventExists = async (id: string) => (await env.DB.prepare("select 1 as one from audit_events where id = ?").bind(id).first()) !== null;

  it("deletes audit events older than AUDIT_RETENTION_DAYS (365) and usage counters older than 31 days, keeps newer ones, once", async () => {
    const now = Date.now();
    const old1 = await insertEvent(now - 366 * DAY_MS, o.org.id);
    const old2 = await insertEvent(now - 800 * DAY_MS, null);
    const edge = await insertEvent(now - 364 * DAY_MS, o.org.id);
    const recent = await insertEvent(now - DAY_MS, o.org.id);
    const account = `sa_${unique("usage").replace("-", "")}`;
    const hour = hourOf(now);
    await env.DB.batch([
      env.DB.prepare("insert into usage_counters (account_id, hour, exchanges) values (?, ?, 5)").bind(account, hour - 32 * 24),
      env.DB.prepare("insert into usage_counters (account_id, hour, exchanges) values (?, ?, 7)").bind(account, hour - 29 * 24),
    ]);

    const first = await runJob("purge");
    expect(first.auditPurged, JSON.stringify(first)).toBe(2);
    expect(first.usagePurged, JSON.stringify(first)).toBe(1);
    expect(first.more, JSON.stringify(first)).toBe(false);
    expect(await eventExists(old1), "366 days old").toBe(false);
    expect(await eventExists(old2), "800 days old (platform event)").toBe(false);
    expect(await eventExists(edge), "364 days old").toBe(true);
    expect(await eventExists(recent), "1 day old").toBe(true);
    const { results } = await env.DB.prepare("select hour from usage_counters where account_id = ?").bind(account).all<{ hour: number }>();
    expect(results.map((r) => r.hour), JSON.stringify(results)).toEqual([hour - 29 * 24]);

    // The org's log (through the API) no longer shows the purged event.
    const res = await call("GET", `/api/v1/orgs/${o.org.id}/audit-events?action=test.purge&limit=200`, { token: o.adminToken });
    expectStatus(res, 200);
    expect(res.json.items.map((e: { id: string }) => e.id).sort(), res.text).toEqual([edge, recent].sort());

    const second = await runJob("purge");
    expect(second, JSON.stringify(second)).toMatchObject({ processed: 0, more: false, auditPurged: 0, usagePurged: 0 });

    // Two days later the 364-day-old event has crossed the retention line too.
    const later = await runJob("purge", { now: clockAhead(2 * DAY_MS) });
    expect(later.auditPurged, JSON.stringify(later)).toBe(1);
    expect(await eventExists(edge)).toBe(false);
    expect(await eventExists(recent)).toBe(true);
  });

  it("purges in batches: more is true while a full batch was deleted", async () => {
    const now = Date.now();
    for (let i = 0; i < 5; i++) await insertEvent(now - (400 + i) * DAY_MS, o.org.id);
    const runs = [];
    for (let i = 0; i < 4; i++) runs.push(await runJob("purge", { batchSize: 2 }));
    expect(runs.map((r) => [r.auditPurged, r.more]), JSON.stringify(runs)).toEqual([
      [2, true],
      [2, true],
      [1, false],
      [0, false],
    ]);
  });

  it("the account's Durable Object alarm purges expired assertion jtis and keeps live ones (replay protection while live)", async () => {
    const sa = await viewerAccount(o.adminToken, o.org.id);
    const stub = env.ACCOUNT_DO.get(env.ACCOUNT_DO.idFromName(sa.id));
    const soon = Date.now() + 150;
    const live = Date.now() + HOUR_MS;
    const remembered = await runInDurableObject<AccountCredentials, boolean[]>(stub, (instance) => [
      instance.rememberOnce("jti:jti-soon", soon),
      instance.rememberOnce("jti:jti-live", live),
      instance.rememberOnce("jti:jti-soon", soon),
    ]);
    expect(remembered, "a jti is accepted once while live").toEqual([true, true, false]);
    await new Promise((r) => setTimeout(r, 300));
    await runDurableObjectAlarm(stub);
    const state = await runInDurableObject<AccountCredentials, { keys: string[]; alarm: number | null }>(stub, async (_i, s) => ({
      keys: [...s.storage.kv.list<number>({ prefix: "jti:" })].map(([k]) => k),
      alarm: await s.storage.getAlarm(),
    }));
    expect(state.keys, JSON.stringify(state)).toEqual(["jti:jti-live"]);
    expect(state.alarm, `the alarm is re-armed for the live entry: ${JSON.stringify(state)}`).not.toBeNull();
    expect(state.alarm!, JSON.stringify(state)).toBeLessThanOrEqual(live);
    // The live jti is still refused.
    expect(await runInDurableObject<AccountCredentials, boolean>(stub, (i) => i.rememberOnce("jti:jti-live", live))).toBe(false);
  });

  it("jtis expiring one after another are purged in batches: the alarm never fires sooner than JTI_PURGE_EVERY_MS apart", async () => {
    const sa = await viewerAccount(o.adminToken, o.org.id);
    const stub = env.ACCOUNT_DO.get(env.ACCOUNT_DO.idFromName(sa.id));
    const start = Date.now();
    const alarmAt = () => runInDurableObject<AccountCredentials, number | null>(stub, (_i, s) => s.storage.getAlarm());
    // 40 assertions expiring 5 ms apart, the first in 50 ms.
    const accepted = await runInDurableObject<AccountCredentials, boolean[]>(stub, (instance) => Array.from({ length: 40 }, (_, i) => instance.rememberOnce(`jti:jti-${i}`, start + 50 + 5 * i)));
    expect(accepted.every(Boolean)).toBe(true);
    await vi.waitFor(async () => expect(await alarmAt()).not.toBeNull());
    expect(await alarmAt(), "armed no sooner than the batch interval").toBeGreaterThanOrEqual(start + JTI_PURGE_EVERY_MS);
    await new Promise((r) => setTimeout(r, 150)); // about half have expired
    const purgedAt = Date.now();
    await runDurableObjectAlarm(stub);
    const left = await runInDurableObject<AccountCredentials, number>(stub, (_i, s) => [...s.storage.kv.list({ prefix: "jti:" })].length);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(40);
    await vi.waitFor(async () => expect(await alarmAt()).not.toBeNull());
    expect(await alarmAt(), "re-armed for the rest a batch interval later, not at the next expiry").toBeGreaterThanOrEqual(purgedAt + JTI_PURGE_EVERY_MS);
  });
});

describe("rotateKeys", () => {
  it("rotates once the active key is older than KEY_ROTATION_DAYS (30); the new key is in the JWKS at once; no rotation before", async () => {
    const before = await servedJwks();
    const kidsBefore = before.keys.map((k) => k.kid);
    expect(kidsBefore.length, before.res.text).toBeGreaterThanOrEqual(1);

    const now = await runJob("rotateKeys");
    expect(now, JSON.stringify(now)).toMatchObject({ processed: 0, rotated: 0 });
    const day29 = await runJob("rotateKeys", { now: clockAhead(29 * DAY_MS) });
    expect(day29, JSON.stringify(day29)).toMatchObject({ processed: 0, rotated: 0 });
    expect((await servedJwks()).keys.map((k) => k.kid)).toEqual(kidsBefore);

    const rotated = await runJob("rotateKeys", { now: clockAhead(31 * DAY_MS) });
    expect(rotated, JSON.stringify(rotated)).toMatchObject({ processed: 1, rotated: 1 });

    const after = await servedJwks();
    const kidsAfter = after.keys.map((k) => k.kid);
    const added = kidsAfter.filter((k) => !kidsBefore.includes(k));
    expect(added.length, `one new key published at once: ${after.res.text}`).toBe(1);
    for (const kid of kidsBefore) expect(kidsAfter, `the old key stays published: ${after.res.text}`).toContain(kid);

    // Publish before use: the new key is "next", the old one still signs.
    const keys = await call("GET", "/api/v1/admin/signing-keys", { token: root.token });
    expectStatus(keys, 200);
    const next = keys.json.items.find((k: { kid: string }) => k.kid === added[0]);
    expect(next?.state, keys.text).toBe("next");

    const events = await call("GET", `/api/v1/audit-events?action=signing_key.rotated&target=${encodeURIComponent(added[0]!)}`, { token: root.token });
    expectStatus(events, 200);
    expect(events.json.items.length, events.text).toBe(1);
    expect(events.json.items[0].actorId, events.text).toBe("system");

    // Afterwards, at the real clock (the new key pending) and 29 days on (the new key young): no rotation.
    expect(await runJob("rotateKeys"), "real clock after the rotation").toMatchObject({ rotated: 0 });
    expect(await runJob("rotateKeys", { now: clockAhead(29 * DAY_MS) }), "29 days after the rotation").toMatchObject({ rotated: 0 });
    expect((await servedJwks()).keys.map((k) => k.kid).sort()).toEqual([...kidsAfter].sort());
  });

  it("a second run at the same advanced instant does not rotate again", async () => {
    const kids = (await servedJwks()).keys.map((k) => k.kid);
    const again = await runJob("rotateKeys", { now: clockAhead(31 * DAY_MS) });
    const after = await servedJwks();
    expect(again, `a second rotation at the same instant; JWKS now ${after.res.text}`).toMatchObject({ processed: 0, rotated: 0 });
    expect(after.keys.map((k) => k.kid).sort(), after.res.text).toEqual([...kids].sort());
  });
});

describe("the scheduled() handler", () => {
  /** The parsed `cron.run` lines logged through console.log. */
  function cronLines(spy: { mock: { calls: unknown[][] } }) {
    return spy.mock.calls
      .map((args) => {
        try {
          return typeof args[0] === "string" ? (JSON.parse(args[0]) as Record<string, any>) : null;
        } catch {
          return null;
        }
      })
      .filter((line): line is Record<string, any> => line?.event === "cron.run");
  }

  async function runScheduled() {
    const spy = vi.spyOn(console, "log");
    const controller = createScheduledController({ scheduledTime: new Date(), cron: "*/5 * * * *" });
    const ctx = createExecutionContext();
    await worker.scheduled(controller, env, ctx);
    await waitOnExecutionContext(ctx);
    const lines = cronLines(spy);
    spy.mockRestore();
    return lines;
  }

  it("runs every job and logs one JSON summary line (counts per job, durationMs); a token past expiry in D1 is expired", async () => {
    const sa = await viewerAccount(o.adminToken, o.org.id);
    const t = await issueOk(o.adminToken, o.org.id, sa.id);
    await setColumns("access_tokens", t.id, { expires_at: Date.now() - 1000 });
    // KV's record does not know the new expiry (it says "never"): the job is what ends it at the edge.
    expect((await kvRecordOf(t.token))?.expiresAt, "KV record before the run").toBeNull();

    const lines = await runScheduled();
    expect(lines.length, JSON.stringify(lines)).toBe(1);
    const line = lines[0]!;
    expect(line.level, JSON.stringify(line)).toBe("info");
    expect(Object.keys(line.jobs).sort(), JSON.stringify(line)).toEqual([...JOB_NAMES].sort());
    expect(Object.keys(JOBS).sort(), "the jobs the handler knows").toEqual([...JOB_NAMES].sort());
    for (const name of JOB_NAMES) jobResult(line as never, name);
    expect(line.durationMs, JSON.stringify(line)).toBeTypeOf("number");
    expect(line.durationMs, JSON.stringify(line)).toBeGreaterThanOrEqual(0);
    expect(line.jobs.expireTokens.processed, JSON.stringify(line)).toBeGreaterThanOrEqual(1);

    expect((await tokenRow(t.id))?.status).toBe("expired");
    expect(await env.TOKENS.get(await kvKeyOf(t.token))).toBeNull();
    await expectDead(t.token, o.org.id, sa.id, "after the scheduled run");

    // A second run finds nothing more to expire.
    const again = await runScheduled();
    expect(again.length, JSON.stringify(again)).toBe(1);
    expect(again[0]!.jobs.expireTokens, JSON.stringify(again)).toMatchObject({ processed: 0, more: false });
  });

  it("a failing job is reported in the summary and does not stop the jobs after it", async () => {
    // Corrupt reconcile's resumable cursor so that the job throws.
    await env.TOKENS.put("cron:reconcile", "{not json");
    try {
      const lines = await runScheduled();
      expect(lines.length, JSON.stringify(lines)).toBe(1);
      const jobs = lines[0]!.jobs;
      expect(jobs.reconcile?.error, JSON.stringify(jobs)).toBeTypeOf("string");
      for (const name of ["purge", "rotateKeys", "expireTokens"]) jobResult(lines[0] as never, name);
    } finally {
      await env.TOKENS.delete("cron:reconcile");
    }
  });
});

describe("POST /api/v1/admin/jobs/run", () => {
  it("root runs the chosen jobs and gets the summary; the token past expiry is expired", async () => {
    const sa = await viewerAccount(o.adminToken, o.org.id);
    const t = await issueOk(o.adminToken, o.org.id, sa.id);
    await setColumns("access_tokens", t.id, { expires_at: Date.now() - 1000 });

    const res = await call("POST", "/api/v1/admin/jobs/run", { token: root.token, body: { jobs: ["expireTokens"] } });
    expectStatus(res, 200);
    expect(Object.keys(res.json.jobs), res.text).toEqual(["expireTokens"]);
    expect(res.json.jobs.expireTokens.processed, res.text).toBeGreaterThanOrEqual(1);
    expect(res.json.jobs.expireTokens.more, res.text).toBe(false);
    expect(res.json.durationMs, res.text).toBeTypeOf("number");
    expect((await tokenRow(t.id))?.status).toBe("expired");
    await expectDead(t.token, o.org.id, sa.id);

    const again = await call("POST", "/api/v1/admin/jobs/run", { token: root.token, body: { jobs: ["expireTokens"] } });
    expectStatus(again, 200);
    expect(again.json.jobs.expireTokens, again.text).toMatchObject({ processed: 0, more: false });
  });

  it("without a body every job runs", async () => {
    const res = await call("POST", "/api/v1/admin/jobs/run", { token: root.token });
    expectStatus(res, 200);
    expect(Object.keys(res.json.jobs).sort(), res.text).toEqual([...JOB_NAMES].sort());
    for (const name of JOB_NAMES) jobResult(res.json, name);
  });

  it("an org admin gets 403 and no job runs; a viewer 403; no credential 401; an unknown job 400", async () => {
    const sa = await viewerAccount(o.adminToken, o.org.id);
    const t = await issueOk(o.adminToken, o.org.id, sa.id);
    await setColumns("access_tokens", t.id, { expires_at: Date.now() - 1000 });

    expectDenied(await call("POST", "/api/v1/admin/jobs/run", { token: o.adminToken, body: { jobs: ["expireTokens"] } }), ["platform.root"]);
    expect((await tokenRow(t.id))?.status, "the refused call ran nothing").toBe("active");
    const viewer = await newAccount(o.adminToken, o.org.id, { roles: [{ role: "viewer" }] });
    expectProblem(await call("POST", "/api/v1/admin/jobs/run", { token: viewer.token, body: {} }), 403);
    expectUnauthenticated(await call("POST", "/api/v1/admin/jobs/run", { body: {} }));
    expectProblem(await call("POST", "/api/v1/admin/jobs/run", { token: root.token, body: { jobs: ["dropTables"] } }), 400);
    expect((await tokenRow(t.id))?.status).toBe("active");
  });
});
