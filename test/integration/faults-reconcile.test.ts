import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { forgetCredentials } from "../../src/domain/credentials/record-cache.ts";
import type { AccountRecord, TokenRecord } from "../../src/domain/credentials/kv-records.ts";
import { runJob } from "./lifecycle-helpers.ts";
import { call, expectStatus } from "../helpers.ts";
import {
  CHANGES,
  cellsFor,
  cleanup,
  dropAlarm,
  expectAgreement,
  expectNothingDeadAccepted,
  faultName,
  faultsOf,
  install,
  Injector,
  runCell,
  runReconcile,
  scenario,
  scenarioFor,
  setupFixture,
  uninstall,
  type Fault,
  type Fixture,
  type Scenario,
} from "./fault-helpers.ts";
import { exchange } from "./oauth-helpers.ts";
import { kvKeyOf, kvKeys, revoke, tokenRow } from "./token-helpers.ts";

/**
 * The fault matrix of faults.test.ts, with the object evicted AND its alarm lost after the fault
 * (as if its replays had been exhausted): only the reconcile job (POST /api/v1/admin/jobs/run) is
 * left. After it runs, nothing dead is accepted and the `tok:` records agree with D1 as far as the
 * job promises (README, "Scheduled work"); what it does not look at (a journaled change that left
 * nothing to see, a grace secret's record, the `sa:` record) is finished by the object's next
 * call, after which D1 and KV agree completely.
 *
 * The cells run one at a time (the job is global: it would repair other cells' accounts mid-fault)
 * and delete their account afterwards, keeping this file's KV under 50 `tok:` keys: see the last
 * describe for why the job needs that.
 */

let fx: Fixture;
beforeAll(async () => {
  fx = await setupFixture();
});

const RECONCILE_CELLS = cellsFor("reconcile");

describe("fault matrix, repaired by the reconcile job alone (object evicted, alarm lost)", () => {
  it("covers every step of every change but journal-put and d1-constraint (nothing to repair: see faults.test.ts)", () => {
    const table = CHANGES.map((c) => `  ${c.name}: ${RECONCILE_CELLS.filter((cell) => cell.change === c).map((cell) => faultName(cell.fault)).join(" ")}`);
    console.log(`reconcile matrix, ${RECONCILE_CELLS.length} cells:\n${table.join("\n")}`);
    expect(RECONCILE_CELLS.length).toBe(CHANGES.reduce((n, c) => n + faultsOf(c).length - 2, 0));
  });

  it.each(RECONCILE_CELLS)("$label", async (cell) => {
    const s = await scenarioFor(cell.change);
    try {
      await runCell(cell, s);
    } finally {
      await cleanup(s);
    }
  });
});

/**
 * Drift that is fail-closed (a credential D1 says is live is refused, never the reverse) with the
 * object's alarm lost: the reconcile job now compares grace secrets, each secret's own expiry and
 * the sa: records too (these were gaps found by this suite), and resyncs the account.
 */
describe("fail-closed drift, repaired by the reconcile job alone", () => {
  /** Runs a change with a fault, then evicts the object and drops its alarm (replays exhausted), then reconciles. */
  async function faultThenReconcile(change: string, fault: Fault): Promise<Scenario> {
    const spec = CHANGES.find((c) => c.name === change)!;
    const s = await scenario();
    await spec.prepare?.(s);
    const inj = new Injector(fault);
    await install(s.stub, inj);
    try {
      await spec.run(s);
    } finally {
      await uninstall(s.stub, inj);
    }
    expect(inj.fired, inj.log.join(" | ")).not.toBeNull();
    await evictDurableObject(s.stub);
    await dropAlarm(s.stub);
    await runReconcile();
    await expectNothingDeadAccepted(s, "after reconcile", inj);
    return s;
  }

  // An enable whose last KV write (the grace secret's record, still saying "disabled") is lost:
  // D1 says the account is active and a0 in its grace; KV refuses a0 until the journal replays.
  it("a grace (previous) secret's stale record is rewritten by reconcile", async () => {
    const s = await faultThenReconcile("enable account", { step: "kv-after", n: 3 });
    try {
      await expectAgreement(s, "grace secret after reconcile", { sa: false });
    } finally {
      await cleanup(s);
    }
  });

  // A regenerate with a grace whose first KV write (deleting the old grace secret) fails after the
  // second (shortening the current secret's record to the grace's end) went through. Reconcile
  // compares each secret's own expiresAt too, so it resyncs the account: its object first completes
  // the journaled regenerate, and D1 and KV end up agreeing.
  it("a current secret's record with a shortened expiresAt is caught by reconcile", async () => {
    const s = await faultThenReconcile("regenerate (300 s grace)", { step: "kv-before", n: 1 });
    try {
      await expectAgreement(s, "secrets after reconcile", { sa: true });
    } finally {
      await cleanup(s);
    }
  });

  // An added key whose sa: write is lost: D1 lists it, private_key_jwt refuses it.
  it("a stale sa: record (a key D1 holds) is rewritten by reconcile", async () => {
    const s = await faultThenReconcile("add key", { step: "kv-after", n: 1 });
    try {
      await expectAgreement(s, "sa: after reconcile", { sa: true });
    } finally {
      await cleanup(s);
    }
  });

  // A disable that failed after writing the sa: record (D1: active, sa: "disabled"). Reconcile
  // compares the sa: record too, so the account's object completes the journaled disable.
  it("a stale sa: record (status) is caught by reconcile", async () => {
    const s = await faultThenReconcile("disable account", { step: "kv-before", n: 2 });
    try {
      await expectAgreement(s, "sa: after reconcile", { sa: true });
    } finally {
      await cleanup(s);
    }
  });
});

/**
 * Regression (found by this suite): the reconcile job's KV -> D1 side binds every listed hash twice,
 * and D1 allows at most 100 bound parameters per statement; with 50+ `tok:` keys the job threw on
 * every run. It now queries in chunks.
 */
describe("the reconcile job at the default batch size with 50+ tok: keys", () => {
  let victim: { secret: string; record: string; accountId: string };

  beforeAll(async () => {
    // 26 accounts with two secrets each (the scenario's a0 in grace and a1): 52 more tok: keys.
    const made: Scenario[] = [];
    for (let i = 0; i < 26; i++) made.push(await scenario());
    expect((await kvKeys("tok:")).length).toBeGreaterThanOrEqual(50);
    // A revoked secret whose record comes back (the orphan reconcile exists to delete).
    const s = made[0]!;
    const key = await kvKeyOf(s.a1);
    const record = (await env.TOKENS.get(key))!;
    expectStatus(await revoke(fx.adminToken, fx.org.id, s.accountId, s.tokenId), 204);
    expect((await tokenRow(s.tokenId))?.status).toBe("revoked");
    victim = { secret: s.a1, record, accountId: s.accountId };
  }, 60_000);

  const resurrect = async () => {
    await env.TOKENS.put(await kvKeyOf(victim.secret), victim.record);
    forgetCredentials({ accountId: victim.accountId });
    // The revoked secret works again while its record is back: exactly what reconcile must undo.
    expect((await exchange(victim.secret, { duration_seconds: 60 })).status).toBe(200);
  };

  it("POST /api/v1/admin/jobs/run (batch 200) deletes the orphan record of a revoked secret", async () => {
    await resurrect();
    const res = await call("POST", "/api/v1/admin/jobs/run", { token: fx.root.token, body: { jobs: ["reconcile"] } });
    expectStatus(res, 200);
    try {
      expect(res.json.jobs.reconcile.error, res.text).toBeUndefined();
      expect(await env.TOKENS.get(await kvKeyOf(victim.secret)), "orphan record after reconcile").toBeNull();
    } finally {
      await env.TOKENS.delete(await kvKeyOf(victim.secret));
    }
  });

  it("control: with 49 keys per batch (99 parameters) the same job deletes it", async () => {
    await resurrect();
    await env.TOKENS.delete("cron:reconcile");
    for (let i = 0; i < 20; i++) {
      const r = await runJob("reconcile", { batchSize: 49 });
      if (!r.more) break;
    }
    expect(await env.TOKENS.get(await kvKeyOf(victim.secret)), "orphan record after reconcile").toBeNull();
    forgetCredentials({ accountId: victim.accountId });
    expect((await exchange(victim.secret, { duration_seconds: 60 })).status).toBe(401);
  });
});
