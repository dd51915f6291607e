import { and, eq, isNull, lt, lte, or, sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { auditEvents, webhookAttempts, webhookDeliveries, webhookEndpoints, type AuditEvent, type WebhookDelivery, type WebhookEndpoint } from "../../db/schema.ts";
import type { Config } from "../../env.ts";
import { OutboundError, postLimited } from "../../lib/outbound.ts";
import { publicUrlProblem } from "../../lib/public-url.ts";
import { auditRow } from "../audit/audit-log.ts";
import type { Ctx } from "../shared/context.ts";
import { PAYLOAD_VERSION } from "./catalogue.ts";
import { enqueuePending } from "./outbox.ts";
import { signatureHeader } from "./secrets.ts";

/**
 * One delivery attempt, as the queue consumer makes it: claim the row (a lease, so no two
 * consumers send it at once and a delivered row is never sent again), sign and POST the event,
 * record the attempt, and say when to try again. The consumer acks or retries the message by
 * the outcome; this module never touches the queue.
 */

export type DeliveryOutcome = { kind: "done" } | { kind: "retry"; delaySeconds: number };

/** The longest a queue message may be delayed (Cloudflare Queues: 12 hours). */
export const MAX_QUEUE_DELAY_SECONDS = 43_200;

/** The payload's shape, version PAYLOAD_VERSION (docs/webhooks.md, "Payload"). */
export function payloadOf(event: Pick<AuditEvent, "id" | "orgId" | "actorId" | "targetType" | "targetId" | "requestId" | "details" | "createdAt">, type: string) {
  return {
    id: event.id,
    type,
    version: PAYLOAD_VERSION,
    timestamp: new Date(event.createdAt).toISOString(),
    orgId: event.orgId,
    data: {
      target: { type: event.targetType, id: event.targetId },
      actorId: event.actorId,
      requestId: event.requestId,
      details: event.details,
    },
  };
}

/**
 * The wait before retry number `failures` (1 after the first failure): base x 4^(failures-1),
 * at most the configured maximum, with +-20 % jitter so that an endpoint coming back is not hit by
 * every waiting delivery in the same second; never shorter than the receiver's Retry-After.
 */
export function retryDelaySeconds(config: Pick<Config, "WEBHOOK_RETRY_BASE_SECONDS" | "WEBHOOK_RETRY_MAX_DELAY_SECONDS">, failures: number, retryAfter: number | null, random = Math.random): number {
  const exponential = Math.min(config.WEBHOOK_RETRY_BASE_SECONDS * 4 ** Math.max(0, failures - 1), config.WEBHOOK_RETRY_MAX_DELAY_SECONDS);
  const jittered = exponential * (0.8 + 0.4 * random());
  return Math.min(Math.max(1, Math.round(Math.max(jittered, retryAfter ?? 0))), MAX_QUEUE_DELAY_SECONDS);
}

/** Test hooks of the consumer's tests (never set in production). */
export interface DeliverOptions {
  random?: () => number;
}

/** Makes the attempt the message stands for, or says why there is none to make now. */
export async function deliver(ctx: Ctx, deliveryId: string, options: DeliverOptions = {}): Promise<DeliveryOutcome> {
  const now = ctx.now();
  const d = webhookDeliveries;
  const lease = ctx.config.WEBHOOK_TIMEOUT_MS + 30_000;
  const claimed = await ctx.db
    .update(d)
    .set({ leaseUntil: now + lease })
    .where(and(eq(d.id, deliveryId), eq(d.state, "pending"), or(isNull(d.leaseUntil), lt(d.leaseUntil, now)), or(isNull(d.nextAttemptAt), lte(d.nextAttemptAt, now + 1000))))
    .returning()
    .get();
  if (!claimed) return notClaimed(ctx, deliveryId, now);
  const [endpoint, event] = await Promise.all([
    ctx.db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, claimed.endpointId)).get(),
    ctx.db.select().from(auditEvents).where(eq(auditEvents.id, claimed.eventId)).get(),
  ]);
  if (!endpoint || !event) return finish(ctx, claimed, { state: "failed", error: !endpoint ? "endpoint deleted" : "event no longer in the audit log" });
  if (!endpoint.enabled) return finish(ctx, claimed, { state: "failed", error: "endpoint disabled" });
  const refused = publicUrlProblem(endpoint.url, { allowLoopback: ctx.config.WEBHOOK_ALLOW_LOOPBACK });
  if (refused) return attempted(ctx, claimed, endpoint, now, { status: null, error: `refused: ${refused}`, retryAfter: null, final: true }, options);
  const body = JSON.stringify(payloadOf(event, claimed.eventType));
  const timestamp = Math.floor(now / 1000);
  const headers = {
    "content-type": "application/json",
    "user-agent": "Keyward-Webhooks/1",
    "webhook-id": claimed.eventId,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await signatureHeader(endpoint, ctx.config.signingSecret, claimed.eventId, timestamp, body, now),
  };
  try {
    const answer = await postLimited(endpoint.url, body, headers, { timeoutMs: ctx.config.WEBHOOK_TIMEOUT_MS, maxBytes: 64 * 1024 });
    const ok = answer.status >= 200 && answer.status < 300;
    return attempted(ctx, claimed, endpoint, now, { status: answer.status, error: ok ? null : `status ${answer.status}`, retryAfter: answer.retryAfterSeconds, final: false }, options);
  } catch (err) {
    const reason = err instanceof OutboundError ? err.message : "send failed";
    return attempted(ctx, claimed, endpoint, now, { status: null, error: reason, retryAfter: null, final: false }, options);
  }
}

/** A message for a row this consumer may not send now: done with it, or back later. */
async function notClaimed(ctx: Ctx, deliveryId: string, now: number): Promise<DeliveryOutcome> {
  const d = webhookDeliveries;
  const row = await ctx.db.select({ state: d.state, leaseUntil: d.leaseUntil, nextAttemptAt: d.nextAttemptAt }).from(d).where(eq(d.id, deliveryId)).get();
  // Delivered, failed or deleted: nothing left to do (a duplicate message, or a redelivery after a crash).
  if (!row || row.state !== "pending") return { kind: "done" };
  const wait = Math.max(row.leaseUntil ?? 0, row.nextAttemptAt ?? 0) - now;
  return { kind: "retry", delaySeconds: Math.min(Math.max(1, Math.ceil(wait / 1000)), MAX_QUEUE_DELAY_SECONDS) };
}

async function finish(ctx: Ctx, claimed: WebhookDelivery, end: { state: "failed"; error: string }): Promise<DeliveryOutcome> {
  await ctx.db
    .update(webhookDeliveries)
    .set({ state: end.state, lastError: end.error, leaseUntil: null, nextAttemptAt: null })
    .where(eq(webhookDeliveries.id, claimed.id));
  return { kind: "done" };
}

interface AttemptResult {
  status: number | null;
  error: string | null;
  retryAfter: number | null;
  /** No retry can help (the URL is refused). */
  final: boolean;
}

/**
 * Records the attempt with its consequences in one batch: the delivery delivered, rescheduled or
 * failed; the endpoint's failure record; and, when the endpoint has failed for
 * WEBHOOK_DISABLE_AFTER_DAYS, the endpoint disabled with a `webhook_endpoint.disabled` audit event
 * (the outbox trigger sends it to the org's other endpoints: this one is disabled first).
 */
async function attempted(ctx: Ctx, claimed: WebhookDelivery, endpoint: WebhookEndpoint, startedAt: number, result: AttemptResult, options: DeliverOptions): Promise<DeliveryOutcome> {
  const now = Math.max(startedAt, ctx.now());
  const config = ctx.config;
  const attempts = claimed.attempts + 1;
  const success = result.error === null;
  const delay = success ? 0 : retryDelaySeconds(config, attempts, result.retryAfter, options.random);
  const windowEnd = claimed.windowStartedAt + config.WEBHOOK_RETRY_WINDOW_SECONDS * 1000;
  const givesUp = !success && (result.final || attempts >= config.WEBHOOK_MAX_ATTEMPTS || startedAt + delay * 1000 > windowEnd);
  const d = webhookDeliveries;
  const e = webhookEndpoints;
  const attemptRow = { deliveryId: claimed.id, attempt: attempts, startedAt, durationMs: Math.max(0, now - startedAt), status: result.status, error: result.error };
  const common = { attempts, leaseUntil: null, lastStatus: result.status, lastError: result.error };
  const deliveryUpdate = success
    ? ctx.db.update(d).set({ ...common, state: "delivered", deliveredAt: now, nextAttemptAt: null }).where(eq(d.id, claimed.id))
    : ctx.db
        .update(d)
        .set({ ...common, state: givesUp ? "failed" : "pending", nextAttemptAt: givesUp ? null : startedAt + delay * 1000 })
        .where(eq(d.id, claimed.id));
  let disabling = false;
  const statements: BatchItem<"sqlite">[] = [ctx.db.insert(webhookAttempts).values(attemptRow).onConflictDoNothing(), deliveryUpdate];
  if (success) {
    statements.push(ctx.db.update(e).set({ failingSince: null }).where(and(eq(e.id, endpoint.id), sql`${e.failingSince} is not null`)));
  } else {
    statements.push(ctx.db.update(e).set({ failingSince: startedAt }).where(and(eq(e.id, endpoint.id), isNull(e.failingSince))));
    const failingSince = endpoint.failingSince ?? startedAt;
    if (endpoint.enabled && startedAt - failingSince >= config.WEBHOOK_DISABLE_AFTER_DAYS * 86_400_000) {
      statements.push(...disableStatements(ctx, endpoint, failingSince));
      disabling = true;
    }
  }
  await ctx.db.batch(statements as [BatchItem<"sqlite">, ...BatchItem<"sqlite">[]]);
  // The disable event was written here, off any request: its deliveries to the other endpoints go out now.
  if (disabling) await enqueuePending(ctx, { limit: 100 });
  return success || givesUp ? { kind: "done" } : { kind: "retry", delaySeconds: delay };
}

/**
 * Disables a failing endpoint and writes its audit event only when this statement disabled it
 * (`changes()` of the UPDATE just before, in the same batch): two consumers failing at once write
 * one event.
 */
function disableStatements(ctx: Ctx, endpoint: WebhookEndpoint, failingSince: number) {
  const e = webhookEndpoints;
  const reason = `every delivery failed since ${new Date(failingSince).toISOString()}`;
  const row = auditRow(ctx, {
    action: "webhook_endpoint.disabled",
    orgId: endpoint.orgId,
    targetType: "webhook_endpoint",
    targetId: endpoint.id,
    details: { url: endpoint.url, reason: "failing", failingSince: new Date(failingSince).toISOString() },
  });
  return [
    ctx.db.update(e).set({ enabled: false, disabledReason: reason, updatedAt: ctx.now() }).where(and(eq(e.id, endpoint.id), eq(e.enabled, true))),
    ctx.db.insert(auditEvents).select(
      ctx.db
        .select({
          id: sql`${row.id}`.as("id"),
          orgId: sql`${row.orgId}`.as("org_id"),
          actorId: sql`${row.actorId}`.as("actor_id"),
          action: sql`${row.action}`.as("action"),
          targetType: sql`${row.targetType}`.as("target_type"),
          targetId: sql`${row.targetId}`.as("target_id"),
          requestId: sql`${row.requestId}`.as("request_id"),
          ip: sql`${row.ip}`.as("ip"),
          userAgent: sql`${row.userAgent}`.as("user_agent"),
          details: sql`${JSON.stringify(row.details)}`.as("details"),
          createdAt: sql`${row.createdAt}`.as("created_at"),
        })
        .from(e)
        .where(and(eq(e.id, endpoint.id), sql`changes() = 1`)),
    ),
  ];
}

