import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { generateAccessToken } from "../../src/domain/credentials/access-token.ts";
import { createCtx } from "../../src/domain/shared/context.ts";
import { runChange, type Change } from "../../src/domain/credentials/change.ts";
import { planIssue } from "../../src/domain/credentials/plans.ts";
import type { TokenRecord } from "../../src/domain/credentials/kv-records.ts";
import type { AccountCredentials } from "../../src/durable-objects/account-credentials.ts";
import type { Bindings } from "../../src/env.ts";
import { call, expectStatus, platformRoot, unique } from "../helpers.ts";
import { clockAhead, kvRecordOf, listTokenItems, MINUTE_MS, randomHash, runJob, setColumns } from "./lifecycle-helpers.ts";
import { auditOf, expectDead, expectWorks, freshOrg, issueOk, journaledRevoke, kvKeyOf, kvKeys, regenerate, revoke, sha256, tokenRow, tokensPath, viewerAccount } from "./token-helpers.ts";

/**
 * Fault injection and repair. D1 is the source of truth; reconciliation makes KV agree with it,
 * and at no point may a dead (revoked, expired) credential be accepted, before or after a repair.
 *
 * The secrets under test are not used just before a fault is injected straight into KV: an isolate
 * may keep a record it has just read for a few seconds, which is not what these tests are about.
 */

const PENDING = "pending-change";
const CURSOR_KEY = "cron:reconcile";

let root: { id: string; token: string };
let o: Awaited<ReturnType<typeof freshOrg>>;
beforeAll(async () => {
  root = await platformRoot();
  o = await freshOrg(root.token);
});

/**
 * One full reconcile pass: the job resumes from the cursors it stores in KV, so start a fresh pass
 * and make its batch large enough for everything this file stores.
 */
async function reconcile() {
  await env.TOKENS.delete(CURSOR_KEY);
  return runJob("reconcile", { batchSize: 1_000 });
}

/** A viewer account with one live token issued over HTTP. */
async function accountWithToken(body: Record<string, unknown> = {}) {
  const sa = await viewerAccount(o.adminToken, o.org.id);
  const token = await issueOk(o.adminToken, o.org.id, sa.id, body);
  return { sa, token };
}

async function apiStatus(accountId: string, tokenId: string) {
  const { items, res } = await listTokenItems(tokensPath(o.org.id, accountId), o.adminToken);
  const item = items.find((t) => t.id === tokenId);
  expect(item, `token ${tokenId} not listed: ${res.text}`).toBeDefined();
  return item!.status;
}

/** KV with every put failing, as if the write after the D1 commit were lost. */
function kvLosingPuts(): KVNamespace {
  const kv = env.TOKENS;
  return {
    get: kv.get.bind(kv),
    getWithMetadata: kv.getWithMetadata.bind(kv),
    list: kv.list.bind(kv),
    delete: kv.delete.bind(kv),
    put: () => Promise.reject(new Error("injected: KV put lost")),
  } as unknown as KVNamespace;
}

describe("bounded batches with resumable cursors", () => {
  const activeRows = async () => (await env.DB.prepare("select count(*) as n from access_tokens where status = 'active'").first<{ n: number }>())!.n;

  it("once both sides have been swept with nothing left to repair, a run reports more: false", async () => {
    // Consistent storage where, with batches of 2, a D1 pass and a KV pass take equally many runs
    // (an odd number of active tokens, one KV entry each; a D1 pass ends on its short last batch).
    for (let i = 0; i < 4 && ((await activeRows()) % 2 === 0 || (await kvKeys("tok:")).length !== (await activeRows())); i++) await accountWithToken();
    const rows = await activeRows();
    expect(rows % 2, "precondition: an odd number of active tokens").toBe(1);
    expect((await kvKeys("tok:")).length, "precondition: one KV entry per active token").toBe(rows);
    // The KV side one page ahead of the D1 side: the state the job reaches by itself whenever a
    // repair makes KV longer mid-pass (set here directly so that the run sequence is deterministic).
    const firstPage = await env.TOKENS.list({ prefix: "tok:", limit: 2 });
    if (firstPage.list_complete) throw new Error("precondition: more than one page of tok: keys");
    await env.TOKENS.put(CURSOR_KEY, JSON.stringify({ d1: "", kv: firstPage.cursor }));

    const runs = [];
    for (let i = 0; i < 4 * rows; i++) {
      const r = await runJob("reconcile", { batchSize: 2 });
      runs.push({ processed: r.processed, more: r.more, repaired: [r.accountsResynced, r.orphansDeleted], cursors: await env.TOKENS.get(CURSOR_KEY) });
      if (!r.more) break;
    }
    expect(runs.every((r) => r.repaired[0] === 0 && r.repaired[1] === 0), "nothing to repair").toBe(true);
    expect(runs.at(-1)?.more, `${runs.length} runs (two full passes of each side) and still more: ${JSON.stringify(runs.slice(0, 8))}`).toBe(false);
  });

  it("small batches repair a missing record within one pass over D1, each run handling at most a batch per side", async () => {
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await accountWithToken());
    const victim = made[3]!;
    await env.TOKENS.delete(await kvKeyOf(victim.token.token));
    await expectDead(victim.token.token, o.org.id, victim.sa.id);
    const active = await activeRows();

    const runs = [];
    for (let i = 0; i < active + 1; i++) {
      const r = await runJob("reconcile", { batchSize: 2 });
      runs.push(r);
      expect(r.processed, `at most 2 D1 rows and 2 KV keys: ${JSON.stringify(r)}`).toBeLessThanOrEqual(4);
      if (await env.TOKENS.get(await kvKeyOf(victim.token.token))) break;
    }
    expect(runs.reduce((n, r) => n + (r.accountsResynced as number), 0), JSON.stringify(runs)).toBe(1);
    // From wherever the D1 cursor stood: the rest of one pass, then at most one whole pass.
    expect(runs.length, `${active} active rows in batches of 2: ${JSON.stringify(runs)}`).toBeLessThanOrEqual(2 * (Math.floor(active / 2) + 1));
    await expectWorks(victim.token.token, o.org.id, victim.sa.id, "repaired by a small-batch pass");
  });
});

describe("a KV write lost after the D1 commit", () => {
  it("the token is refused (fail closed) until reconcile rewrites its record, then works", async () => {
    const { sa, token } = await accountWithToken();
    const key = await kvKeyOf(token.token);
    expect(await env.TOKENS.get(key), "KV record after issue").not.toBeNull();
    await env.TOKENS.delete(key);

    await expectDead(token.token, o.org.id, sa.id, "lost KV write");
    expect((await tokenRow(token.id))?.status, "D1 still says active").toBe("active");
    expect(await apiStatus(sa.id, token.id)).toBe("active");

    const r = await reconcile();
    expect(r.accountsResynced, JSON.stringify(r)).toBeGreaterThanOrEqual(1);
    const record = await kvRecordOf(token.token);
    expect(record?.tokenId, JSON.stringify(record)).toBe(token.id);
    expect(record?.account.accountId, JSON.stringify(record)).toBe(sa.id);
    await expectWorks(token.token, o.org.id, sa.id, "after reconcile");
  });

  it("injected: an issue whose KV puts fail after D1 committed leaves a refused token that reconcile repairs", async () => {
    const sa = await viewerAccount(o.adminToken, o.org.id);
    const ctx = createCtx(env, { actorId: "fault-test", requestId: null, ip: null, userAgent: null });
    const plan = await planIssue(ctx, { accountId: sa.id, name: "lost-write", expiresAt: null, limit: 1 });
    if (!plan.ok) throw new Error(JSON.stringify(plan));
    const { change, token, secret } = plan.value;
    const faulty = { DB: env.DB, TOKENS: kvLosingPuts() } as unknown as Bindings;
    await expect(runChange(faulty, change)).rejects.toThrow(/injected/);

    const row = await tokenRow(token.id);
    expect(row?.status, `D1 committed: ${JSON.stringify(row)}`).toBe("active");
    expect(row?.secret_hash).toBe(await sha256(secret));
    expect(await env.TOKENS.get(await kvKeyOf(secret)), "no KV record").toBeNull();
    await expectDead(secret, o.org.id, sa.id, "D1 committed, KV write lost");

    const r = await reconcile();
    expect(r.accountsResynced, JSON.stringify(r)).toBeGreaterThanOrEqual(1);
    await expectWorks(secret, o.org.id, sa.id, "after reconcile");
  });

});

describe("orphan KV entries (no active D1 row behind them)", () => {
  it("a revoked token's record put back into KV is deleted by reconcile; the token is refused afterwards", async () => {
    const { sa, token } = await accountWithToken();
    const key = await kvKeyOf(token.token);
    const before = await env.TOKENS.get(key);
    expect(before).not.toBeNull();
    expectStatus(await revoke(o.adminToken, o.org.id, sa.id, token.id), 204);
    expect(await env.TOKENS.get(key), "revoke deleted the record").toBeNull();
    await expectDead(token.token, o.org.id, sa.id, "revoked");
    await env.TOKENS.put(key, before!);

    const r = await reconcile();
    expect(r.orphansDeleted, JSON.stringify(r)).toBeGreaterThanOrEqual(1);
    expect(await env.TOKENS.get(key), "orphan after reconcile").toBeNull();
    expect((await tokenRow(token.id))?.status, "reconcile did not revive it in D1").toBe("revoked");
    await expectDead(token.token, o.org.id, sa.id, "revoked, after reconcile");
  });

  it("a copy of a live record under a hash nobody holds is deleted; the live original is kept", async () => {
    const { sa, token } = await accountWithToken();
    const original = await env.TOKENS.get(await kvKeyOf(token.token));
    const orphanHash = await randomHash();
    await env.TOKENS.put(`tok:${orphanHash}`, original!);

    const r = await reconcile();
    expect(r.orphansDeleted, JSON.stringify(r)).toBeGreaterThanOrEqual(1);
    expect(await env.TOKENS.get(`tok:${orphanHash}`), "orphan copy").toBeNull();
    expect(await env.TOKENS.get(await kvKeyOf(token.token)), "the live original").toBe(original);
    await expectWorks(token.token, o.org.id, sa.id, "the live token");
  });

  it("an expired token's lingering record is refused before (its expiry is re-checked) and deleted by reconcile", async () => {
    const { sa, token } = await accountWithToken({ expiresInSeconds: 60 });
    const key = await kvKeyOf(token.token);
    const record = (await env.TOKENS.get<TokenRecord>(key, "json"))!;
    // expireTokens (clock ahead) marks it expired in D1 and deletes the record ...
    expect((await runJob("expireTokens", { now: clockAhead(2 * MINUTE_MS) })).processed).toBeGreaterThanOrEqual(1);
    expect((await tokenRow(token.id))?.status).toBe("expired");
    // ... and a stale copy comes back (KV expiry is lazy), saying it expired a second ago.
    const past = Date.now() - 1_000;
    await env.TOKENS.put(key, JSON.stringify({ ...record, expiresAt: past, tokenExpiresAt: past }));
    await expectDead(token.token, o.org.id, sa.id, "lingering expired record");

    const r = await reconcile();
    expect(r.orphansDeleted, JSON.stringify(r)).toBeGreaterThanOrEqual(1);
    expect(await env.TOKENS.get(key)).toBeNull();
    await expectDead(token.token, o.org.id, sa.id, "after reconcile");
  });

  it("the old secret of a regenerate still in its grace is not an orphan: reconcile keeps it", async () => {
    const { sa, token } = await accountWithToken();
    const res = await regenerate(o.adminToken, o.org.id, sa.id, token.id, { graceSeconds: 3_600 });
    expectStatus(res, 200);
    const r = await reconcile();
    expect(r.orphansDeleted, JSON.stringify(r)).toBe(0);
    expect(await env.TOKENS.get(await kvKeyOf(token.token)), "grace record").not.toBeNull();
    await expectWorks(token.token, o.org.id, sa.id, "old secret in its grace");
    await expectWorks(res.json.token, o.org.id, sa.id, "new secret");
  });

  it("a random well-formed secret with no record anywhere stays refused and reconcile invents nothing", async () => {
    const { sa } = await accountWithToken();
    const secret = generateAccessToken();
    await expectDead(secret, o.org.id, sa.id);
    await reconcile();
    expect(await env.TOKENS.get(await kvKeyOf(secret))).toBeNull();
    await expectDead(secret, o.org.id, sa.id);
  });
});

describe("a revocation interrupted after its KV deletion", () => {
  const stubOf = (accountId: string) => env.ACCOUNT_DO.get(env.ACCOUNT_DO.idFromName(accountId));



  it("the token is refused at every point, and reconcile (through the object, which replays the journal first) never resurrects it", async () => {
    const { sa, token } = await accountWithToken();
    const eventId = `evt_${unique("interrupted").replace("-", "")}`;
    const change = await journaledRevoke(token.id, token.token, o.org.id, eventId);
    const stub = stubOf(sa.id);
    // The object journaled the revoke, ran its KV step, and crashed before D1 (no alarm left).
    await runInDurableObject<AccountCredentials, void>(stub, async (_i, state) => {
      await state.storage.put(PENDING, change);
      await state.storage.deleteAlarm();
    });
    await env.TOKENS.delete(await kvKeyOf(token.token));
    await evictDurableObject(stub);

    await expectDead(token.token, o.org.id, sa.id, "after the KV step");
    expect((await tokenRow(token.id))?.status, "D1 not yet revoked").toBe("active");

    // Reconcile sees an active row without a KV record and asks the account's object to resync it.
    const r = await reconcile();
    expect(r.accountsResynced, JSON.stringify(r)).toBeGreaterThanOrEqual(1);
    const row = await tokenRow(token.id);
    expect(row?.status, `the journaled revoke completed: ${JSON.stringify(row)}`).toBe("revoked");
    expect(row?.revoked_by, JSON.stringify(row)).toBe("journal-test");
    expect(await env.TOKENS.get(await kvKeyOf(token.token)), "no KV record after reconcile").toBeNull();
    await expectDead(token.token, o.org.id, sa.id, "after reconcile");
    const pending = await runInDurableObject<AccountCredentials, Change | undefined>(stub, (_i, state) => state.storage.get<Change>(PENDING));
    expect(pending, "journal cleared").toBeUndefined();
    expect((await auditOf(token.id)).filter((e) => e.id === eventId).length, "the journaled audit event, once").toBe(1);
    expect(await apiStatus(sa.id, token.id)).toBe("revoked");

    // And again: nothing comes back.
    await reconcile();
    expect(await env.TOKENS.get(await kvKeyOf(token.token))).toBeNull();
    await expectDead(token.token, o.org.id, sa.id, "after a second reconcile");
  });
});

describe("stale KV records", () => {
  it("a record with an old expiresAt (refused: fail closed) is rewritten with D1's", async () => {
    const { sa, token } = await accountWithToken({ expiresInSeconds: 3_600 });
    const key = await kvKeyOf(token.token);
    const record = (await env.TOKENS.get<TokenRecord>(key, "json"))!;
    const old = Date.now() - 60_000;
    await env.TOKENS.put(key, JSON.stringify({ ...record, expiresAt: old, tokenExpiresAt: old }));
    await expectDead(token.token, o.org.id, sa.id, "stale expiry");

    const r = await reconcile();
    expect(r.accountsResynced, JSON.stringify(r)).toBeGreaterThanOrEqual(1);
    const row = await tokenRow(token.id);
    const fixed = await kvRecordOf(token.token);
    expect(fixed?.expiresAt, JSON.stringify({ fixed, row })).toBe(row!.expires_at);
    expect(fixed?.tokenExpiresAt, JSON.stringify({ fixed, row })).toBe(row!.expires_at);
    await expectWorks(token.token, o.org.id, sa.id, "after reconcile");
  });

  it("a record granting longer than D1 says (no expiry vs D1's) is cut back to D1's expiry", async () => {
    const { sa, token } = await accountWithToken();
    expect((await kvRecordOf(token.token))?.expiresAt).toBeNull();
    const expiresAt = Date.now() + 3 * MINUTE_MS;
    await setColumns("access_tokens", token.id, { expires_at: expiresAt });

    const r = await reconcile();
    expect(r.accountsResynced, JSON.stringify(r)).toBeGreaterThanOrEqual(1);
    const fixed = await kvRecordOf(token.token);
    expect(fixed?.expiresAt, JSON.stringify(fixed)).toBe(expiresAt);
    await expectWorks(token.token, o.org.id, sa.id, "still within D1's expiry");
  });

  it("a record naming another token id is rewritten", async () => {
    const { sa, token } = await accountWithToken();
    const key = await kvKeyOf(token.token);
    const record = (await env.TOKENS.get<TokenRecord>(key, "json"))!;
    await env.TOKENS.put(key, JSON.stringify({ ...record, tokenId: "tok_somethingelse" }));
    await reconcile();
    expect((await kvRecordOf(token.token))?.tokenId).toBe(token.id);
    await expectWorks(token.token, o.org.id, sa.id);
  });

  it("a lost re-enable (D1 active, the KV records still saying disabled) is repaired, not left locked out", async () => {
    const { sa, token } = await accountWithToken();
    const path = `/api/v1/orgs/${o.org.id}/service-accounts/${sa.id}`;
    expectStatus(await call("PATCH", path, { token: o.adminToken, body: { status: "disabled" } }), 200);
    const disabledToken = await env.TOKENS.get(await kvKeyOf(token.token));
    const disabledAccount = await env.TOKENS.get(`sa:${sa.id}`);
    expect(JSON.parse(disabledToken!).account.status).toBe("disabled");
    expectStatus(await call("PATCH", path, { token: o.adminToken, body: { status: "active" } }), 200);
    // The enable's KV writes (after its D1 commit) are lost: KV keeps the disabled records.
    await env.TOKENS.put(await kvKeyOf(token.token), disabledToken!);
    await env.TOKENS.put(`sa:${sa.id}`, disabledAccount!);
    expect((await call("GET", path, { token: o.adminToken })).json.status, "D1 says active").toBe("active");
    await expectDead(token.token, o.org.id, sa.id, "fail closed while KV says disabled");

    const r = await reconcile();
    const fixed = await kvRecordOf(token.token);
    expect(fixed?.account.status, `reconcile should rewrite the stale claims: ${JSON.stringify({ r, fixed })}`).toBe("active");
    await expectWorks(token.token, o.org.id, sa.id, "after reconcile");
  });
});

describe("idempotence", () => {
  it("once repaired, a second reconcile repairs nothing (accountsResynced 0, orphansDeleted 0) and changes no record", async () => {
    const { token } = await accountWithToken();
    await env.TOKENS.delete(await kvKeyOf(token.token));
    await env.TOKENS.put(`tok:${await randomHash()}`, (await env.TOKENS.get(`sa:${token.accountId}`))!);

    const first = await reconcile();
    expect(first.accountsResynced, JSON.stringify(first)).toBeGreaterThanOrEqual(1);
    expect(first.orphansDeleted, JSON.stringify(first)).toBeGreaterThanOrEqual(1);
    const snapshot = await tokenRecords();

    const second = await reconcile();
    expect(second, JSON.stringify(second)).toMatchObject({ more: false, accountsResynced: 0, orphansDeleted: 0 });
    expect(second.processed, "it did look at D1 and KV").toBeGreaterThan(0);
    expect(await tokenRecords()).toEqual(snapshot);
  });
});

/** Every `tok:` key with its value. */
async function tokenRecords() {
  const out: Record<string, string | null> = {};
  let cursor: string | undefined;
  for (;;) {
    const page: KVNamespaceListResult<unknown, string> = await env.TOKENS.list({ prefix: "tok:", ...(cursor ? { cursor } : {}) });
    for (const k of page.keys) out[k.name] = await env.TOKENS.get(k.name);
    if (page.list_complete) return out;
    cursor = page.cursor;
  }
}
