import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createCtx } from "../../src/domain/shared/context.ts";
import { runChange, type Change } from "../../src/domain/credentials/change.ts";
import { planIssue, planRegenerate } from "../../src/domain/credentials/plans.ts";
import type { AccountCredentials } from "../../src/durable-objects/account-credentials.ts";
import { forgetCredentials } from "../../src/domain/credentials/record-cache.ts";
import {
  CHANGES,
  cellsFor,
  dropAlarm,
  expectAgreement,
  expectNothingDeadAccepted,
  faultName,
  faultsOf,
  Injector,
  pendingOf,
  PENDING,
  runCell,
  scenario,
  scenarioFor,
  setupFixture,
  wrapEnv,
  type Fault,
  type Scenario,
} from "./fault-helpers.ts";
import { exchange } from "./oauth-helpers.ts";
import { sha256 } from "./token-helpers.ts";

/**
 * Fault injection at every step of every credential change, repaired by replaying the journal.
 * See fault-helpers.ts for the injector and the checks; faults-reconcile.test.ts runs the same
 * matrix with the object's alarm lost, so that only the reconcile job is left to repair.
 *
 * Steps (the object's order): journal-put, alarm-set, kv-before#n (the n-th KV write before D1),
 * d1-before-commit, d1-constraint (D1 refuses the batch: the change is dropped and KV rewritten
 * from D1), d1-after-commit (committed, the reply lost), kv-after#n, journal-clear.
 *
 * Repair here: `next-call` (the real bindings put back on the same instance, whose next call
 * replays: a failed call does not wedge the object). faults-alarm.test.ts runs the same cells with
 * the instance evicted after the fault (a crash) and the alarm of a fresh instance replaying;
 * faults-reconcile.test.ts with the alarm lost too, so that only the reconcile job is left. A fault
 * before the journal (journal-put), or D1 refusing the batch (d1-constraint), leaves nothing to
 * replay: those two steps run here only.
 */

beforeAll(async () => {
  await setupFixture();
});

const CELLS = cellsFor("next-call");

describe("fault matrix, completed by the object's next call", () => {
  it("covers every step of every change (the table is printed for the report)", () => {
    const table = CHANGES.map((c) => `  ${c.name} (kvBefore ${c.kvBefore}, kvAfter ${c.kvAfter}): ${faultsOf(c).map(faultName).join(" ")}`);
    console.log(`fault matrix, ${CELLS.length} cells:\n${table.join("\n")}`);
    expect(CELLS.length).toBe(CHANGES.reduce((n, c) => n + faultsOf(c).length, 0));
    for (const c of CHANGES) expect(faultsOf(c).length, c.name).toBe(6 + c.kvBefore + c.kvAfter);
  });

  // Each cell touches only its own account's object, so several run at a time.
  describe.concurrent("cells", () => {
    it.each(CELLS)("$label", async (cell) => {
      await runCell(cell, await scenarioFor(cell.change));
    });
  });
});

/**
 * The HTTP driver never learns a new secret when its call fails. Here the change is planned by the
 * object's own planner (so the test holds the new secret), journaled as the object does, and
 * applied with `runChange` on wrapped bindings, failing at each step of runChange: the new secret
 * is checked at the exchange endpoint right after the fault and after the alarm's replay.
 */
describe("faults inside runChange, with the new secret known", () => {
  type Planned = { change: Change; secret: string; old: string[] };
  const PLANS: { name: string; kvBefore: number; kvAfter: number; plan: (s: Scenario) => Promise<Planned> }[] = [
    {
      name: "issue",
      kvBefore: 0,
      kvAfter: 2,
      plan: async (s) => {
        const p = await planIssue(createCtx(env, { actorId: "fault-test", requestId: null, ip: null, userAgent: null }), { accountId: s.accountId, name: "planned", expiresAt: null, limit: 2 });
        if (!p.ok) throw new Error(JSON.stringify(p));
        return { change: p.value.change, secret: p.value.secret, old: [] };
      },
    },
    ...[0, 300].map((grace) => ({
      name: `regenerate (grace ${grace} s)`,
      kvBefore: 2,
      kvAfter: 1,
      plan: async (s: Scenario) => {
        const p = await planRegenerate(createCtx(env, { actorId: "fault-test", requestId: null, ip: null, userAgent: null }), s.accountId, s.tokenId, grace);
        if (!p.ok) throw new Error(JSON.stringify(p));
        return { change: p.value.change, secret: p.value.secret, old: [s.a0, s.a1] };
      },
    })),
  ];
  const steps = (p: (typeof PLANS)[number]): Fault[] => [
    ...Array.from({ length: p.kvBefore }, (_, i) => ({ step: "kv-before" as const, n: i + 1 })),
    { step: "d1-before-commit" },
    { step: "d1-after-commit" },
    ...Array.from({ length: p.kvAfter }, (_, i) => ({ step: "kv-after" as const, n: i + 1 })),
  ];
  const CASES = PLANS.flatMap((p) => steps(p).map((fault) => ({ p, fault, label: `${p.name} × ${faultName(fault)}` })));

  it.each(CASES)("$label: the new secret works only once D1 holds it and KV has its record; the alarm completes it", async ({ p, fault }) => {
    const s = await scenario();
    const { change, secret, old } = await p.plan(s);
    const stub = s.stub;
    // Journaled as the object does (with its alarm), then applied by runChange on wrapped bindings.
    await runInDurableObject<AccountCredentials, void>(stub, async (_i, state) => {
      await state.storage.put(PENDING, change);
      await state.storage.setAlarm(Date.now() + 15_000);
    });
    const inj = new Injector(fault);
    await expect(runChange(wrapEnv(env, inj), change)).rejects.toThrow(/injected fault/);
    expect(inj.fired, inj.log.join(" | ")).not.toBeNull();
    forgetCredentials({ accountId: s.accountId }); // what the object's caller does after any call
    s.secrets.push(secret);

    // Right after the fault: nothing dead accepted; the new secret works only if D1 committed it AND its KV record was written.
    await expectNothingDeadAccepted(s, "right after the fault", inj);
    const fresh = (await exchange(secret, { duration_seconds: 60 })).status;
    const recorded = (await env.TOKENS.get(`tok:${await sha256(secret)}`)) !== null;
    expect(fresh, `new secret right after ${faultName(fault)} [${inj.log.join(" | ")}]`).toBe(inj.committed && recorded ? 200 : 401);
    if (!inj.committed) expect(recorded, "a KV record for a secret D1 does not hold yet").toBe(false);
    if (old.length > 0 && change.kvBefore.some((op) => op.op === "delete" && op.key === `tok:${s.originalHashes[1]}`) && fault.step !== "kv-before") {
      // Without a grace the current secret died before D1 was touched (kv-before complete).
      expect((await exchange(s.a1, { duration_seconds: 60 })).status, "old secret after its deletion").toBe(401);
    }

    // The alarm replays the journal: the change completes and D1 and KV agree.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    forgetCredentials({ accountId: s.accountId });
    expect(await pendingOf(stub)).toBeUndefined();
    await expectAgreement(s, "after the alarm", { sa: true, inj });
    expect((await exchange(secret, { duration_seconds: 60 })).status, "new secret after the replay").toBe(200);
    const row = await env.DB.prepare("select count(*) as n from access_tokens where secret_hash = ?").bind(await sha256(secret)).first<{ n: number }>();
    expect(row!.n).toBe(1);
    await dropAlarm(stub);
  });
});
