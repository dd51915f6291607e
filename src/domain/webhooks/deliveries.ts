import { and, asc, desc, eq, lt, or, type SQL } from "drizzle-orm";
import { auditEvents, webhookAttempts, webhookDeliveries, type WebhookAttempt, type WebhookDelivery, type WebhookDeliveryState } from "../../db/schema.ts";
import { newId } from "../../lib/ids.ts";
import { withPermission } from "../access/permissions.ts";
import { auditInsert, auditRow } from "../audit/audit-log.ts";
import { orgFor } from "../registry/orgs.ts";
import type { Ctx } from "../shared/context.ts";
import { DomainError, notFound } from "../shared/errors.ts";
import { decodeCursor, encodeCursor, type PageQuery } from "../shared/pagination.ts";
import { TEST_EVENT_TYPE } from "./catalogue.ts";
import { endpointOf } from "./endpoints.ts";

/** An endpoint's delivery log (newest first), one delivery with its attempts, redelivery and the test event. */

export interface DeliveryPageQuery extends PageQuery {
  state?: WebhookDeliveryState | undefined;
}

export const listDeliveries = withPermission("webhooks.read", async (gate, orgRef: string, endpointId: string, page: DeliveryPageQuery) => {
  const org = await orgFor(gate, orgRef);
  const endpoint = await endpointOf(gate.ctx, org.id, endpointId);
  const d = webhookDeliveries;
  let after: SQL | undefined;
  if (page.cursor) {
    const c = decodeCursor(page.cursor);
    after = or(lt(d.createdAt, c.t), and(eq(d.createdAt, c.t), lt(d.id, c.id)));
  }
  const rows = await gate.ctx.db
    .select()
    .from(d)
    .where(and(eq(d.endpointId, endpoint.id), page.state ? eq(d.state, page.state) : undefined, after))
    .orderBy(desc(d.createdAt), desc(d.id))
    .limit(page.limit + 1);
  const items = rows.slice(0, page.limit);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > page.limit && last ? encodeCursor({ t: last.createdAt, id: last.id }) : null };
});

async function deliveryOf(ctx: Ctx, endpointId: string, id: string): Promise<WebhookDelivery> {
  const d = webhookDeliveries;
  const row = await ctx.db.select().from(d).where(and(eq(d.id, id), eq(d.endpointId, endpointId))).get();
  if (!row) throw notFound("Delivery");
  return row;
}

export const readDelivery = withPermission("webhooks.read", async (gate, orgRef: string, endpointId: string, id: string): Promise<{ delivery: WebhookDelivery; attempts: WebhookAttempt[] }> => {
  const org = await orgFor(gate, orgRef);
  const endpoint = await endpointOf(gate.ctx, org.id, endpointId);
  const delivery = await deliveryOf(gate.ctx, endpoint.id, id);
  const a = webhookAttempts;
  const attempts = await gate.ctx.db.select().from(a).where(eq(a.deliveryId, delivery.id)).orderBy(asc(a.startedAt), asc(a.attempt));
  return { delivery, attempts };
});

/**
 * Sends a delivered or failed event again, with the same `webhook-id` (receivers that already
 * have it may ignore it), in a new retry window. A pending one is already being tried: 409.
 */
export const retryDelivery = withPermission("webhooks.edit", async (gate, orgRef: string, endpointId: string, id: string): Promise<WebhookDelivery> => {
  const org = await orgFor(gate, orgRef);
  const ctx = gate.ctx;
  const endpoint = await endpointOf(ctx, org.id, endpointId);
  const delivery = await deliveryOf(ctx, endpoint.id, id);
  if (delivery.state === "pending") throw new DomainError("conflict", "The delivery is still pending: its retries are under way");
  if (!endpoint.enabled) throw new DomainError("conflict", "The endpoint is disabled; enable it first (PATCH {\"enabled\": true})");
  const now = ctx.now();
  const reset = { state: "pending" as const, attempts: 0, windowStartedAt: now, nextAttemptAt: null, enqueuedAt: null, leaseUntil: null, deliveredAt: null };
  const d = webhookDeliveries;
  const [updated] = await ctx.db.batch([
    ctx.db.update(d).set(reset).where(and(eq(d.id, delivery.id), eq(d.state, delivery.state))).returning(),
    auditInsert(ctx, { action: "webhook_delivery.retried", orgId: org.id, targetType: "webhook_delivery", targetId: delivery.id, details: { endpointId: endpoint.id, eventId: delivery.eventId, previousState: delivery.state } }),
  ]);
  if (updated.length === 0) throw new DomainError("conflict", "The delivery changed meanwhile; read it again");
  return updated[0]!;
});

/**
 * A `webhook.test` event for this endpoint only, whatever its filter, signed and retried like any
 * other. A disabled endpoint gets nothing (409), as it would get no real event.
 */
export const sendTestEvent = withPermission("webhooks.edit", async (gate, orgRef: string, endpointId: string): Promise<WebhookDelivery> => {
  const org = await orgFor(gate, orgRef);
  const ctx = gate.ctx;
  const endpoint = await endpointOf(ctx, org.id, endpointId);
  if (!endpoint.enabled) throw new DomainError("conflict", "The endpoint is disabled; enable it first (PATCH {\"enabled\": true})");
  const event = auditRow(ctx, {
    action: "webhook_endpoint.tested",
    orgId: org.id,
    targetType: "webhook_endpoint",
    targetId: endpoint.id,
    details: { url: endpoint.url, message: "A test event sent from Keyward" },
  });
  const delivery: WebhookDelivery = {
    id: newId("webhookDelivery"),
    endpointId: endpoint.id,
    orgId: org.id,
    eventId: event.id,
    eventType: TEST_EVENT_TYPE,
    state: "pending",
    attempts: 0,
    windowStartedAt: event.createdAt,
    nextAttemptAt: null,
    enqueuedAt: null,
    leaseUntil: null,
    lastStatus: null,
    lastError: null,
    createdAt: event.createdAt,
    deliveredAt: null,
  };
  await ctx.db.batch([ctx.db.insert(auditEvents).values(event), ctx.db.insert(webhookDeliveries).values(delivery)]);
  return delivery;
});
