import { and, count, eq, inArray } from "drizzle-orm";
import { webhookAttempts, webhookDeliveries, webhookEndpoints, type WebhookEndpoint } from "../../db/schema.ts";
import { newId } from "../../lib/ids.ts";
import { publicUrlProblem } from "../../lib/public-url.ts";
import { withPermission } from "../access/permissions.ts";
import { auditInsert } from "../audit/audit-log.ts";
import { orgFor } from "../registry/orgs.ts";
import type { Ctx } from "../shared/context.ts";
import { DomainError, notFound } from "../shared/errors.ts";
import { EVENT_TYPES } from "./catalogue.ts";
import { generateSecret, liveSecrets, wrapSecret } from "./secrets.ts";

/**
 * Webhook endpoints of an org (docs/webhooks.md): where events are POSTed, which ones, and the
 * secret that signs them. Every change is audited; the secret is returned once.
 */

export const WEBHOOK_LIMITS = { perOrg: 20, url: 2048, description: 512, events: 50, maxGraceSeconds: 7 * 86_400 } as const;
export const DEFAULT_GRACE_SECONDS = 86_400;

export interface WebhookInput {
  url: string;
  events?: string[] | undefined;
  enabled?: boolean | undefined;
  description?: string | null | undefined;
}

export type WebhookPatch = Partial<WebhookInput>;

/** An endpoint with its signing secret in clear: the answer of create and rotate, never stored. */
export interface EndpointWithSecret {
  endpoint: WebhookEndpoint;
  secret: string;
}

/** Refuses a URL the service must not call (docs/webhooks.md, "Outbound safety"); checked again at every send. */
export function assertWebhookUrl(ctx: Pick<Ctx, "config">, url: string): void {
  const problem = publicUrlProblem(url, { allowLoopback: ctx.config.WEBHOOK_ALLOW_LOOPBACK });
  if (problem) throw new DomainError("webhook_url_not_allowed", `The webhook URL is refused: ${problem}`, { errors: [{ path: "body.url", message: problem }] });
}

/** `*` alone, or distinct names of the catalogue (an unknown name is refused, never ignored). */
function eventFilter(events: string[] | undefined): string[] {
  const list = [...new Set(events ?? ["*"])];
  if (list.length === 0) throw invalidEvents("Name at least one event type, or *");
  if (list.includes("*")) {
    if (list.length > 1) throw invalidEvents("* already means every event type; give it alone");
    return list;
  }
  const unknown = list.filter((e) => !EVENT_TYPES.includes(e));
  if (unknown.length > 0) throw invalidEvents(`Not in the event catalogue: ${unknown.join(", ")} (docs/webhooks.md lists the catalogue)`);
  return list;
}

const invalidEvents = (message: string) => new DomainError("validation_failed", message, { errors: [{ path: "body.events", message }] });

async function endpointOf(ctx: Ctx, orgId: string, id: string): Promise<WebhookEndpoint> {
  const t = webhookEndpoints;
  const row = await ctx.db.select().from(t).where(and(eq(t.id, id), eq(t.orgId, orgId))).get();
  if (!row) throw notFound("Webhook endpoint");
  return row;
}

const auditOf = (endpoint: WebhookEndpoint, action: string, details: Record<string, unknown>) => ({
  action,
  orgId: endpoint.orgId,
  targetType: "webhook_endpoint",
  targetId: endpoint.id,
  details: { url: endpoint.url, ...details },
});

export const createWebhook = withPermission("webhooks.edit", async (gate, orgRef: string, input: WebhookInput): Promise<EndpointWithSecret> => {
  const org = await orgFor(gate, orgRef);
  const ctx = gate.ctx;
  assertWebhookUrl(ctx, input.url);
  const events = eventFilter(input.events);
  const held = await ctx.db.select({ n: count() }).from(webhookEndpoints).where(eq(webhookEndpoints.orgId, org.id)).get();
  if ((held?.n ?? 0) >= WEBHOOK_LIMITS.perOrg) throw new DomainError("webhook_limit_reached", `An org holds at most ${WEBHOOK_LIMITS.perOrg} webhook endpoints`);
  const now = ctx.now();
  const id = newId("webhook");
  const { secret, raw } = generateSecret();
  const endpoint: WebhookEndpoint = {
    id,
    orgId: org.id,
    url: input.url,
    description: input.description ?? null,
    events,
    enabled: input.enabled ?? true,
    secrets: [await wrapSecret(raw, id, ctx.config.signingSecret, now)],
    failingSince: null,
    disabledReason: null,
    createdAt: now,
    createdBy: ctx.meta.actorId,
    updatedAt: now,
  };
  await ctx.db.batch([ctx.db.insert(webhookEndpoints).values(endpoint), auditInsert(ctx, auditOf(endpoint, "webhook_endpoint.created", { events, enabled: endpoint.enabled }))]);
  return { endpoint, secret };
});

export const listWebhooks = withPermission("webhooks.read", async (gate, orgRef: string): Promise<WebhookEndpoint[]> => {
  const org = await orgFor(gate, orgRef);
  const t = webhookEndpoints;
  return gate.ctx.db.select().from(t).where(eq(t.orgId, org.id)).orderBy(t.createdAt, t.id);
});

export const readWebhook = withPermission("webhooks.read", async (gate, orgRef: string, id: string): Promise<WebhookEndpoint> => {
  const org = await orgFor(gate, orgRef);
  return endpointOf(gate.ctx, org.id, id);
});

/** Edits an endpoint; enabling it again clears its failure record (it gets a fresh 5 days). */
export const updateWebhook = withPermission("webhooks.edit", async (gate, orgRef: string, id: string, patch: WebhookPatch): Promise<WebhookEndpoint> => {
  const org = await orgFor(gate, orgRef);
  const ctx = gate.ctx;
  const existing = await endpointOf(ctx, org.id, id);
  if (patch.url !== undefined) assertWebhookUrl(ctx, patch.url);
  const set: Partial<WebhookEndpoint> = { updatedAt: ctx.now() };
  if (patch.url !== undefined) set.url = patch.url;
  if (patch.events !== undefined) set.events = eventFilter(patch.events);
  if (patch.description !== undefined) set.description = patch.description;
  if (patch.enabled !== undefined) {
    set.enabled = patch.enabled;
    if (patch.enabled) Object.assign(set, { failingSince: null, disabledReason: null });
    else if (existing.enabled) set.disabledReason = "disabled by a caller";
  }
  const updated = { ...existing, ...set };
  const changed = Object.keys(patch).filter((k) => patch[k as keyof WebhookPatch] !== undefined);
  await ctx.db.batch([
    ctx.db.update(webhookEndpoints).set(set).where(eq(webhookEndpoints.id, id)),
    auditInsert(ctx, auditOf(updated, "webhook_endpoint.updated", { changed, events: updated.events, enabled: updated.enabled })),
  ]);
  return updated;
});

/** Deletes the endpoint with its delivery log; events not yet delivered to it are dropped. */
export const deleteWebhook = withPermission("webhooks.edit", async (gate, orgRef: string, id: string): Promise<void> => {
  const org = await orgFor(gate, orgRef);
  const ctx = gate.ctx;
  const existing = await endpointOf(ctx, org.id, id);
  const deliveries = ctx.db.select({ id: webhookDeliveries.id }).from(webhookDeliveries).where(eq(webhookDeliveries.endpointId, id));
  await ctx.db.batch([
    ctx.db.delete(webhookAttempts).where(inArray(webhookAttempts.deliveryId, deliveries)),
    ctx.db.delete(webhookDeliveries).where(eq(webhookDeliveries.endpointId, id)),
    ctx.db.delete(webhookEndpoints).where(eq(webhookEndpoints.id, id)),
    auditInsert(ctx, auditOf(existing, "webhook_endpoint.deleted", {})),
  ]);
});

/**
 * A new signing secret (returned once). The previous one keeps signing beside it for
 * `graceSeconds` (0: it stops at once), so receivers can switch without losing a message; a
 * secret rotated out earlier and still in its grace is dropped.
 */
export const rotateWebhookSecret = withPermission(
  "webhooks.edit",
  async (gate, orgRef: string, id: string, graceSeconds: number = DEFAULT_GRACE_SECONDS): Promise<EndpointWithSecret> => {
    const org = await orgFor(gate, orgRef);
    const ctx = gate.ctx;
    const existing = await endpointOf(ctx, org.id, id);
    const now = ctx.now();
    const current = liveSecrets(existing.secrets, now).find((s) => s.expiresAt === null);
    const { secret, raw } = generateSecret();
    const fresh = await wrapSecret(raw, id, ctx.config.signingSecret, now);
    const previousExpiresAt = now + graceSeconds * 1000;
    const secrets = current && graceSeconds > 0 ? [fresh, { ...current, expiresAt: previousExpiresAt }] : [fresh];
    const updated = { ...existing, secrets, updatedAt: now };
    await ctx.db.batch([
      ctx.db.update(webhookEndpoints).set({ secrets, updatedAt: now }).where(eq(webhookEndpoints.id, id)),
      auditInsert(ctx, auditOf(updated, "webhook_endpoint.secret_rotated", { graceSeconds, previousSecretExpiresAt: graceSeconds > 0 ? new Date(previousExpiresAt).toISOString() : null })),
    ]);
    return { endpoint: updated, secret };
  },
);

/** When the previous secret stops signing, while a rotation's grace runs. */
export function previousSecretExpiresAt(endpoint: WebhookEndpoint, now: number): number | null {
  return liveSecrets(endpoint.secrets, now).find((s) => s.expiresAt !== null)?.expiresAt ?? null;
}

export { endpointOf };
