import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { runJobs } from "../../src/cron/index.ts";
import { auditInsert } from "../../src/domain/audit/audit-log.ts";
import { deliver } from "../../src/domain/webhooks/delivery.ts";
import { enqueuePending } from "../../src/domain/webhooks/outbox.ts";
import { consumeWebhooks } from "../../src/queue/webhooks.ts";
import { orgWithAdmin, platformRoot, unique } from "../helpers.ts";
import { endpointFor, eventually, receiver, systemCtx, type Receiver } from "./webhook-helpers.ts";

/**
 * Nothing lost: the delivery row commits with its event or not at all; rows that never reached
 * the queue are sent by the cron; 1,000 events to a receiver failing 30 % of requests and to one
 * that is down for a while arrive exactly once each (by webhook-id); a consumer dying mid-batch
 * leaves only its unacked messages to redeliver, and redelivering everything sends nothing twice.
 */

type Org = Awaited<ReturnType<typeof orgWithAdmin>>;
let root: { token: string };

beforeAll(async () => {
  root = await platformRoot();
});

/** `n` audit events of the catalogue for `orgId`, written as services write them (the trigger adds the deliveries). */
async function writeEvents(orgId: string, n: number): Promise<string[]> {
  const ctx = systemCtx();
  const ids: string[] = [];
  for (let i = 0; i < n; i += 50) {
    const inserts = Array.from({ length: Math.min(50, n - i) }, (_, k) =>
      auditInsert(ctx, { action: "service_account.created", orgId, targetType: "service_account", targetId: `sa_load${i + k}`, details: { name: `load-${i + k}` } }).returning({ id: sql<string>`id` }),
    );
    const results = await ctx.db.batch(inserts as [(typeof inserts)[0], ...typeof inserts]);
    for (const r of results) ids.push(r[0]!.id);
  }
  return ids;
}

const countByState = async (endpointId: string) => {
  const { results } = await env.DB.prepare("select state, count(*) as n from webhook_deliveries where endpoint_id = ? group by state").bind(endpointId).all<{ state: string; n: number }>();
  return Object.fromEntries(results.map((r) => [r.state, r.n]));
};

function expectExactlyOnce(accepted: Record<string, number>, ids: string[], label: string) {
  const twice = Object.entries(accepted).filter(([, n]) => n !== 1);
  expect(twice, `${label}: delivered more than once`).toEqual([]);
  expect(Object.keys(accepted).sort(), `${label}: the set of delivered ids`).toEqual([...ids].sort());
}

describe("the outbox", () => {
  it("a delivery row commits with its event or not at all (a failing batch leaves neither)", async () => {
    const o: Org = await orgWithAdmin(root.token);
    const e = await endpointFor(o.adminToken, o.org.id, receiver());
    const ctx = systemCtx();
    const event = auditInsert(ctx, { action: "service_account.disabled", orgId: o.org.id, targetType: "service_account", targetId: "sa_x", details: {} });
    await expect(ctx.db.batch([event, ctx.db.run(sql`insert into no_such_table values (1)`)])).rejects.toThrow();
    const rows = await env.DB.prepare("select count(*) as n from webhook_deliveries where endpoint_id = ?").bind(e.id).first<{ n: number }>();
    expect(rows!.n).toBe(0);
    const events = await env.DB.prepare("select count(*) as n from audit_events where org_id = ? and target_id = 'sa_x'").bind(o.org.id).first<{ n: number }>();
    expect(events!.n).toBe(0);
  });

  it("an event written off any request is not lost: the cron sends its row, and it is delivered", async () => {
    const o: Org = await orgWithAdmin(root.token);
    const r = receiver();
    const e = await endpointFor(o.adminToken, o.org.id, r);
    const [id] = await writeEvents(o.org.id, 1);
    // Another test's request may send it first (every request sends unsent rows); either way it is sent once.
    await runJobs(env, { jobs: ["webhookOutbox"] });
    await eventually(async () => expect((await r.state()).accepted).toEqual({ [id!]: 1 }));
    expect(await countByState(e.id)).toEqual({ delivered: 1 });
  });
});

describe("1,000 events, a flaky receiver and one that is down for a while", () => {
  it("every event reaches each endpoint exactly once by webhook-id; none is lost or failed", async () => {
    const o: Org = await orgWithAdmin(root.token);
    const flaky = receiver();
    const down = receiver();
    const f = await endpointFor(o.adminToken, o.org.id, flaky, { events: ["account.created"] }, "flaky");
    const d = await endpointFor(o.adminToken, o.org.id, down, { events: ["*"] }, "down");
    await down.control({ downUntil: Date.now() + 5000 });
    const ids = await writeEvents(o.org.id, 1000);
    expect(new Set(ids).size).toBe(1000);
    await enqueuePending(systemCtx(), { limit: 2000 });
    await eventually(
      async () => {
        const [fs, ds] = await Promise.all([countByState(f.id), countByState(d.id)]);
        expect({ fs, ds }).toEqual({ fs: { delivered: 1000 }, ds: { delivered: 1000 } });
      },
      150_000,
      1000,
    );
    const [fState, dState] = await Promise.all([flaky.state(), down.state()]);
    expectExactlyOnce(fState.accepted, ids, "flaky");
    expectExactlyOnce(dState.accepted, ids, "down");
    // The failures happened: about 30 % of the flaky receiver's requests, and the down one refused the first round.
    const flakyFailures = fState.requests.filter((q) => q.status >= 500).length;
    expect(flakyFailures).toBeGreaterThan(200);
    expect(dState.requests.filter((q) => q.status === 503).length).toBeGreaterThan(0);
    expect(fState.requests.every((q) => q.verifiedWith[0] === true)).toBe(true);
  }, 180_000);
});

describe("a consumer crash mid-batch", () => {
  async function claimedRows(o: Org, r: Receiver, n: number) {
    await endpointFor(o.adminToken, o.org.id, r);
    const ids = await writeEvents(o.org.id, n);
    // Marked as sent, so that no request of another test sends them to the real queue: this test is the queue.
    const { results } = await env.DB.prepare(
      "update webhook_deliveries set enqueued_at = ? where org_id = ? returning id, event_id",
    )
      .bind(Date.now(), o.org.id)
      .all<{ id: string; event_id: string }>();
    expect(results).toHaveLength(n);
    return { ids, rows: results };
  }
  const batchOf = (rows: { id: string }[], attempts: number) =>
    createMessageBatch(
      "keyward-webhooks",
      rows.map((r, i) => ({ id: `msg-${attempts}-${i}-${unique("m")}`, timestamp: Date.now(), attempts, body: { d: r.id } })),
    );

  it("acks each message once recorded: the crash leaves only the unacked to redeliver; redelivering all sends nothing twice", async () => {
    const o: Org = await orgWithAdmin(root.token);
    const r = receiver();
    const { ids, rows } = await claimedRows(o, r, 30);
    const first = batchOf(rows, 1);
    const ctx1 = createExecutionContext();
    await expect(
      consumeWebhooks(first, env, {
        afterMessage: (n) => {
          if (n === 8) throw new Error("isolate died");
        },
      }),
    ).rejects.toThrow("isolate died");
    const result = await getQueueResult(first, ctx1);
    const acked = new Set(result.explicitAcks);
    expect(acked.size).toBeGreaterThanOrEqual(8);
    expect(acked.size).toBeLessThan(30);
    const afterCrash = await r.state();
    // What was acked was delivered, once; nothing else was.
    expect(Object.values(afterCrash.accepted).every((n) => n === 1)).toBe(true);
    expect(Object.keys(afterCrash.accepted).length).toBe(acked.size);
    // The queue redelivers the unacked; here every message comes again (as if the acks were lost too).
    const second = batchOf(rows, 2);
    await consumeWebhooks(second, env);
    const result2 = await getQueueResult(second, createExecutionContext());
    expect(result2.explicitAcks).toHaveLength(30);
    expectExactlyOnce((await r.state()).accepted, ids, "after redelivery");
    // A third redelivery of everything: all acked, no request at all.
    const before = (await r.state()).requests.length;
    await consumeWebhooks(batchOf(rows, 3), env);
    expect((await r.state()).requests.length).toBe(before);
  });

  it("a message whose row another consumer holds (a lease) comes back later instead of being sent twice", async () => {
    const o: Org = await orgWithAdmin(root.token);
    const r = receiver();
    const { rows } = await claimedRows(o, r, 1);
    await env.DB.prepare("update webhook_deliveries set lease_until = ? where id = ?").bind(Date.now() + 20_000, rows[0]!.id).run();
    const batch = batchOf(rows, 1);
    await consumeWebhooks(batch, env);
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toHaveLength(1);
    // The retry's delay (which the test queue does not record) is the lease's remainder.
    expect(await deliver(systemCtx(), rows[0]!.id)).toMatchObject({ kind: "retry", delaySeconds: expect.toSatisfy((s: number) => s >= 19 && s <= 20) });
    expect((await r.state()).requests).toEqual([]);
  });
});
