import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { Change } from "../../src/domain/credentials/change.ts";
import { createCtx } from "../../src/domain/shared/context.ts";
import { planIssue, planRegenerate } from "../../src/domain/credentials/plans.ts";
import type { AccountCredentials } from "../../src/durable-objects/account-credentials.ts";
import { expectStatus, platformRoot, unique } from "../helpers.ts";
import { expectProblem } from "./registry-helpers.ts";
import { auditOf, expectDead, expectWorks, freshOrg, issue, issueOk, journaledRevoke, kvKeyOf, revoke, sha256, tokenRow, viewerAccount } from "./token-helpers.ts";

/**
 * The account Durable Object journals every credential change under "pending-change" before it
 * touches KV or D1, and replays an unfinished one on the next call or from its alarm. These tests
 * write a journal entry by hand, as if the object had crashed right after journaling, and show
 * that the change is completed.
 */

const PENDING = "pending-change";

let root: { id: string; token: string };
beforeAll(async () => {
  root = await platformRoot();
});

const stubOf = (accountId: string) => env.ACCOUNT_DO.get(env.ACCOUNT_DO.idFromName(accountId));

/** An account (viewer) with one live token, issued over HTTP. */
async function setup() {
  const o = await freshOrg(root.token);
  const sa = await viewerAccount(o.adminToken, o.org.id);
  const token = await issueOk(o.adminToken, o.org.id, sa.id);
  return { ...o, sa, token };
}


/** Journals a change as the object does before applying it, then "crashes" (evicts the instance). */
async function journalAndCrash(accountId: string, change: Change, alarm: "set" | "none") {
  const stub = stubOf(accountId);
  await runInDurableObject<AccountCredentials, void>(stub, async (_instance, state) => {
    await state.storage.put(PENDING, change);
    if (alarm === "set") await state.storage.setAlarm(Date.now() + 15_000);
    else await state.storage.deleteAlarm();
  });
  await evictDurableObject(stub);
  return stub;
}

const pendingOf = (accountId: string) =>
  runInDurableObject<AccountCredentials, Change | undefined>(stubOf(accountId), (_i, state) => state.storage.get<Change>(PENDING));

/** Nothing of the journaled change has happened yet: the secret is still in KV and D1 says active. */
/** Runs the object's alarm and expects the journal empty afterwards (what was left, and why, if not). */
async function expectAlarmClearsJournal(stub: ReturnType<typeof stubOf>, accountId: string) {
  let alarmError: unknown = null;
  try {
    await runDurableObjectAlarm(stub);
  } catch (err) {
    alarmError = err;
  }
  const pending = await pendingOf(accountId);
  const left = pending?.kvAfter.map((op) => ("expiresAt" in op ? { key: op.key.slice(0, 12), expiresAt: op.expiresAt, now: Date.now() } : op));
  expect.soft(pending, `the journal is stuck (alarm error: ${String(alarmError)}): ${JSON.stringify(left)}`).toBeUndefined();
}

async function expectNotApplied(tokenId: string, secret: string) {
  expect(await env.TOKENS.get(await kvKeyOf(secret)), "KV record before replay").not.toBeNull();
  expect((await tokenRow(tokenId))?.status, "D1 status before replay").toBe("active");
}

async function expectRevokedEverywhere(tokenId: string, secret: string, accountId: string) {
  expect(await env.TOKENS.get(await kvKeyOf(secret)), "KV record after replay").toBeNull();
  const row = await tokenRow(tokenId);
  expect(row?.status, JSON.stringify(row)).toBe("revoked");
  expect(row?.revoked_by, JSON.stringify(row)).toBe("journal-test");
  expect(await pendingOf(accountId), "journal after replay").toBeUndefined();
}

describe("the credential journal", () => {
  it("the next call to the object replays a journaled revoke before doing its own work", async () => {
    const { org, adminToken, sa, token } = await setup();
    const eventId = `evt_${unique("journal")}`;
    await journalAndCrash(sa.id, await journaledRevoke(token.id, token.token, org.id, eventId), "none");
    await expectNotApplied(token.id, token.token);
    expect(await pendingOf(sa.id), "journal before replay").toBeDefined();

    // Under the one-active-token rule this issue is 409 unless the revoke is replayed first.
    const res = await issue(adminToken, org.id, sa.id);
    expectStatus(res, 201);
    await expectRevokedEverywhere(token.id, token.token, sa.id);
    await expectDead(token.token, org.id, sa.id, "journaled revoke");
    await expectWorks(res.json.token, org.id, sa.id, "token issued after the replay");
    const events = await auditOf(token.id);
    expect(events.filter((e) => e.id === eventId).length, JSON.stringify(events)).toBe(1);
  });

  it("a revoke call on the same token replays the journal and stays a 204", async () => {
    const { org, adminToken, sa, token } = await setup();
    await journalAndCrash(sa.id, await journaledRevoke(token.id, token.token, org.id, `evt_${unique("journal")}`), "none");
    await expectNotApplied(token.id, token.token);
    expectStatus(await revoke(adminToken, org.id, sa.id, token.id), 204);
    await expectRevokedEverywhere(token.id, token.token, sa.id);
    await expectDead(token.token, org.id, sa.id);
    // The replayed revoke is the one recorded: the call found the token already dead and changed nothing.
    const events = (await auditOf(token.id)).filter((e) => e.action === "access_token.revoked");
    expect(events.map((e) => e.actor_id), JSON.stringify(events)).toEqual(["journal-test"]);
  });

  it("the alarm replays a journaled revoke with no call at all", async () => {
    const { org, sa, token } = await setup();
    const stub = await journalAndCrash(sa.id, await journaledRevoke(token.id, token.token, org.id, `evt_${unique("journal")}`), "set");
    await expectNotApplied(token.id, token.token);
    expect(await runDurableObjectAlarm(stub), "an alarm was scheduled and ran").toBe(true);
    await expectRevokedEverywhere(token.id, token.token, sa.id);
    await expectDead(token.token, org.id, sa.id, "after the alarm");
  });

  it("the object schedules the alarm itself when it journals (an ordinary change leaves one behind)", async () => {
    const { sa } = await setup();
    const alarm = await runInDurableObject<AccountCredentials, number | null>(stubOf(sa.id), (_i, state) => state.storage.getAlarm());
    expect(alarm, "alarm after a change").not.toBeNull();
    expect(await pendingOf(sa.id), "journal after a completed change").toBeUndefined();
  });

  it("replaying is idempotent: the same change twice leaves one audit event and the same state", async () => {
    const { org, adminToken, sa, token } = await setup();
    const eventId = `evt_${unique("journal")}`;
    const change = await journaledRevoke(token.id, token.token, org.id, eventId);
    const stub = await journalAndCrash(sa.id, change, "set");
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    // As if the object had crashed after applying, before clearing the journal.
    await journalAndCrash(sa.id, change, "set");
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await expectRevokedEverywhere(token.id, token.token, sa.id);
    const events = await auditOf(token.id);
    expect(events.filter((e) => e.id === eventId).length, JSON.stringify(events)).toBe(1);
    // The account works normally afterwards.
    const next = await issueOk(adminToken, org.id, sa.id);
    await expectWorks(next.token, org.id, sa.id);
  });

  it("a journaled issue (the object's own plan) is completed on replay: D1 row and KV record agree", async () => {
    const { org, adminToken, sa, token } = await setup();
    expectStatus(await revoke(adminToken, org.id, sa.id, token.id), 204);
    const ctx = createCtx(env, { actorId: "journal-test", requestId: null, ip: null, userAgent: null });
    const plan = await planIssue(ctx, { accountId: sa.id, name: "journaled", expiresAt: null, limit: 1 });
    if (!plan.ok) throw new Error(JSON.stringify(plan));
    const { change, token: planned, secret } = plan.value;
    const stub = await journalAndCrash(sa.id, change, "set");
    expect(await tokenRow(planned.id), "no row before replay").toBeNull();
    expect(await env.TOKENS.get(await kvKeyOf(secret)), "no KV record before replay").toBeNull();
    await expectDead(secret, org.id, sa.id, "before replay");

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const row = await tokenRow(planned.id);
    expect(row?.status, JSON.stringify(row)).toBe("active");
    expect(row?.secret_hash, JSON.stringify(row)).toBe(await sha256(secret));
    expect(await env.TOKENS.get(await kvKeyOf(secret)), "KV record after replay").not.toBeNull();
    await expectWorks(secret, org.id, sa.id, "replayed issue");
    expect(await pendingOf(sa.id)).toBeUndefined();
    // The replayed token counts against the limit.
    expectProblem(await issue(adminToken, org.id, sa.id), 409, "token_limit_reached");
  });

  it("a journal entry of one account is not replayed by another account's object", async () => {
    const a = await setup();
    const b = await viewerAccount(a.adminToken, a.org.id);
    await journalAndCrash(a.sa.id, await journaledRevoke(a.token.id, a.token.token, a.org.id, `evt_${unique("journal")}`), "none");
    expectStatus(await issue(a.adminToken, a.org.id, b.id), 201);
    await expectNotApplied(a.token.id, a.token.token);
    expect(await pendingOf(a.sa.id)).toBeDefined();
    // The owner's next call replays it.
    expectStatus(await revoke(a.adminToken, a.org.id, a.sa.id, a.token.id), 204);
    await expectRevokedEverywhere(a.token.id, a.token.token, a.sa.id);
  });

  /**
   * KV refuses an `expiration` less than 60 s ahead. A plan clamps its expirations to "now + 60 s"
   * at planning time, so by the time the alarm replays it (15 s later, or more after an outage)
   * the same put can be refused, and the journal must still complete rather than block the account.
   */
  it("a journaled issue replayed 20 s later, when its KV expiry is under 60 s away, still completes and the account stays usable", async () => {
    const { org, adminToken, sa, token } = await setup();
    const plannedAt = Date.now() - 20_000;
    const ctx = { ...createCtx(env, { actorId: "journal-test", requestId: null, ip: null, userAgent: null }), now: () => plannedAt };
    // A 60-second token issued 20 s ago (the minimum expiresInSeconds the API accepts).
    const plan = await planIssue(ctx, { accountId: sa.id, name: "short", expiresAt: plannedAt + 60_000, limit: 2 });
    if (!plan.ok) throw new Error(JSON.stringify(plan));
    const stub = await journalAndCrash(sa.id, plan.value.change, "set");
    await expectAlarmClearsJournal(stub, sa.id);
    expect.soft((await tokenRow(plan.value.token.id))?.status, "replayed D1 row").toBe("active");
    // The account's credentials can still be managed: a revoke of its other token goes through.
    const res = await revoke(adminToken, org.id, sa.id, token.id);
    expectStatus(res, 204);
    await expectDead(token.token, org.id, sa.id);
  });

  it("a journaled regenerate with a 60 s grace replayed 20 s later still completes (the old secret's shortened record)", async () => {
    const { org, adminToken, sa, token } = await setup();
    const plannedAt = Date.now() - 20_000;
    const ctx = { ...createCtx(env, { actorId: "journal-test", requestId: null, ip: null, userAgent: null }), now: () => plannedAt };
    const plan = await planRegenerate(ctx, sa.id, token.id, 60);
    if (!plan.ok) throw new Error(JSON.stringify(plan));
    const stub = await journalAndCrash(sa.id, plan.value.change, "set");
    await expectAlarmClearsJournal(stub, sa.id);
    expect.soft((await tokenRow(token.id))?.secret_hash, "D1 has the new secret").toBe(await sha256(plan.value.secret));
    const res = await revoke(adminToken, org.id, sa.id, token.id);
    expectStatus(res, 204);
    await expectDead(plan.value.secret, org.id, sa.id);
    await expectDead(token.token, org.id, sa.id);
  });
});
