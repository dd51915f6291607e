import { createRoute, z } from "@hono/zod-openapi";
import type { WebhookAttempt, WebhookDelivery, WebhookEndpoint } from "../../db/schema.ts";
import { EVENT_TYPES } from "../../domain/webhooks/catalogue.ts";
import { listDeliveries, readDelivery, retryDelivery, sendTestEvent } from "../../domain/webhooks/deliveries.ts";
import {
  createWebhook,
  deleteWebhook,
  listWebhooks,
  previousSecretExpiresAt,
  readWebhook,
  rotateWebhookSecret,
  updateWebhook,
  WEBHOOK_LIMITS as L,
  DEFAULT_GRACE_SECONDS,
  type EndpointWithSecret,
} from "../../domain/webhooks/endpoints.ts";
import { ctxOf, displayText, errors, iso, jsonBody, jsonResponse, needs, pageOf, pageQuery, router } from "./common.ts";

/** Webhook endpoints, their delivery log and redelivery (docs/webhooks.md). */

const url = z.string().min(1).max(L.url).openapi({ description: "Where events are POSTed: https on a public host (checked again at every send)", example: "https://hooks.example.com/keyward" });
const events = z
  .array(z.string().min(1).max(64))
  .min(1)
  .max(L.events)
  .openapi({ description: "Event types of the catalogue to send, or `[\"*\"]` for all (default); an unknown name is refused", example: ["token.revoked", "token.expiring", "account.disabled"], items: { enum: ["*", ...EVENT_TYPES] } } as never);

export const createWebhookBody = z
  .object({ url, events: events.optional(), enabled: z.boolean().optional(), description: displayText(L.description).nullable().optional() })
  .strict()
  .openapi("CreateWebhook", { example: { url: "https://hooks.example.com/keyward", events: ["token.revoked", "token.expiring"], description: "Pager for credential events" } });

export const patchWebhookBody = z
  .object({ url: url.optional(), events: events.optional(), enabled: z.boolean().optional().openapi({ description: "True again clears an automatic disable" }), description: displayText(L.description).nullable().optional() })
  .strict()
  .openapi("PatchWebhook", { example: { events: ["*"], enabled: true, description: "Every credential event" } });

export const rotateSecretBody = z
  .object({ graceSeconds: z.number().int().min(0).max(L.maxGraceSeconds).optional().openapi({ description: `How long the previous secret still signs beside the new one (default ${DEFAULT_GRACE_SECONDS}; 0: it stops at once)` }) })
  .strict()
  .openapi("RotateWebhookSecret", { example: { graceSeconds: 86400 } });

export const webhookSchema = z
  .object({
    id: z.string().openapi({ example: "whk_3yQm0bE0mUq1hXv3r3aZ9c" }),
    orgId: z.string(),
    url: z.string(),
    description: z.string().nullable(),
    events: z.array(z.string()),
    enabled: z.boolean(),
    disabledReason: z.string().nullable(),
    failingSince: z.string().nullable().openapi({ description: "When the current run of failed attempts began; after WEBHOOK_DISABLE_AFTER_DAYS the endpoint is disabled" }),
    previousSecretExpiresAt: z.string().nullable().openapi({ description: "While a rotation's grace runs: when the previous secret stops signing" }),
    createdAt: z.string(),
    createdBy: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Webhook");

const webhookWithSecretSchema = webhookSchema
  .extend({ secret: z.string().openapi({ description: "The signing secret (Standard Webhooks `whsec_...`), shown this once", example: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }) })
  .openapi("WebhookWithSecret");

export const deliverySchema = z
  .object({
    id: z.string().openapi({ example: "whd_5f1c0e6e1f3a4b2c9d8e7f60" }),
    webhookId: z.string(),
    eventId: z.string().openapi({ description: "The audit event: the `webhook-id` header of every attempt" }),
    eventType: z.string(),
    state: z.enum(["pending", "delivered", "failed"]),
    attempts: z.number().int().openapi({ description: "Attempts in the current retry window" }),
    nextAttemptAt: z.string().nullable(),
    lastStatus: z.number().int().nullable(),
    lastError: z.string().nullable(),
    createdAt: z.string(),
    deliveredAt: z.string().nullable(),
  })
  .openapi("WebhookDelivery");

const attemptSchema = z.object({ attempt: z.number().int(), startedAt: z.string(), durationMs: z.number().int(), status: z.number().int().nullable(), error: z.string().nullable() }).openapi("WebhookAttempt");
const deliveryWithAttemptsSchema = deliverySchema.extend({ attemptLog: z.array(attemptSchema) }).openapi("WebhookDeliveryWithAttempts");

export const toWebhookDto = (e: WebhookEndpoint, now = Date.now()) => ({
  id: e.id,
  orgId: e.orgId,
  url: e.url,
  description: e.description,
  events: e.events,
  enabled: e.enabled,
  disabledReason: e.disabledReason,
  failingSince: iso(e.failingSince),
  previousSecretExpiresAt: iso(previousSecretExpiresAt(e, now)),
  createdAt: iso(e.createdAt)!,
  createdBy: e.createdBy,
  updatedAt: iso(e.updatedAt)!,
});
const withSecret = (r: EndpointWithSecret) => ({ ...toWebhookDto(r.endpoint), secret: r.secret });

export const toDeliveryDto = (d: WebhookDelivery) => ({
  id: d.id,
  webhookId: d.endpointId,
  eventId: d.eventId,
  eventType: d.eventType,
  state: d.state,
  attempts: d.attempts,
  nextAttemptAt: iso(d.nextAttemptAt),
  lastStatus: d.lastStatus,
  lastError: d.lastError,
  createdAt: iso(d.createdAt)!,
  deliveredAt: iso(d.deliveredAt),
});
const toAttemptDto = (a: WebhookAttempt) => ({ attempt: a.attempt, startedAt: iso(a.startedAt)!, durationMs: a.durationMs, status: a.status, error: a.error });

const orgParam = z.object({ org: z.string().max(100) });
const whkParam = orgParam.extend({ whk: z.string().max(100) });
const dlvParam = whkParam.extend({ dlv: z.string().max(100) });
const deliveryQuery = pageQuery.extend({ state: z.enum(["pending", "delivered", "failed"]).optional() });
const tags = ["Webhooks"];
const path = "/{org}/webhooks";

export const webhookRoutes = router()
  .openapi(
    createRoute({ method: "post", path, tags, summary: "Add a webhook endpoint (its signing secret is shown once)", ...needs(createWebhook), request: { params: orgParam, ...jsonBody(createWebhookBody) }, responses: { 201: jsonResponse("The endpoint and its secret", webhookWithSecretSchema), ...errors(400, 401, 403, 404, 409, 422) } }),
    async (c) => c.json(withSecret(await createWebhook(ctxOf(c), c.get("principal"), c.req.valid("param").org, c.req.valid("json"))), 201),
  )
  .openapi(
    createRoute({ method: "get", path, tags, summary: "List the org's webhook endpoints", ...needs(listWebhooks), request: { params: orgParam }, responses: { 200: jsonResponse("Endpoints", pageOf(webhookSchema)), ...errors(401, 403, 404) } }),
    async (c) => c.json({ items: (await listWebhooks(ctxOf(c), c.get("principal"), c.req.valid("param").org)).map((e) => toWebhookDto(e)), nextCursor: null }, 200),
  )
  .openapi(
    createRoute({ method: "get", path: `${path}/{whk}`, tags, summary: "Read a webhook endpoint", ...needs(readWebhook), request: { params: whkParam }, responses: { 200: jsonResponse("The endpoint", webhookSchema), ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, whk } = c.req.valid("param");
      return c.json(toWebhookDto(await readWebhook(ctxOf(c), c.get("principal"), org, whk)), 200);
    },
  )
  .openapi(
    createRoute({ method: "patch", path: `${path}/{whk}`, tags, summary: "Edit, disable or re-enable a webhook endpoint", ...needs(updateWebhook), request: { params: whkParam, ...jsonBody(patchWebhookBody) }, responses: { 200: jsonResponse("The endpoint", webhookSchema), ...errors(400, 401, 403, 404, 422) } }),
    async (c) => {
      const { org, whk } = c.req.valid("param");
      return c.json(toWebhookDto(await updateWebhook(ctxOf(c), c.get("principal"), org, whk, c.req.valid("json"))), 200);
    },
  )
  .openapi(
    createRoute({ method: "delete", path: `${path}/{whk}`, tags, summary: "Delete a webhook endpoint and its delivery log", ...needs(deleteWebhook), request: { params: whkParam }, responses: { 204: { description: "Deleted" }, ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, whk } = c.req.valid("param");
      await deleteWebhook(ctxOf(c), c.get("principal"), org, whk);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({ method: "post", path: `${path}/{whk}/rotate-secret`, tags, summary: "A new signing secret; the previous one still signs during the grace period", ...needs(rotateWebhookSecret), request: { params: whkParam, ...jsonBody(rotateSecretBody, false) }, responses: { 200: jsonResponse("The endpoint and its new secret", webhookWithSecretSchema), ...errors(400, 401, 403, 404) } }),
    async (c) => {
      const { org, whk } = c.req.valid("param");
      return c.json(withSecret(await rotateWebhookSecret(ctxOf(c), c.get("principal"), org, whk, c.req.valid("json")?.graceSeconds)), 200);
    },
  )
  .openapi(
    createRoute({ method: "post", path: `${path}/{whk}/test`, tags, summary: "Send a `webhook.test` event to this endpoint", ...needs(sendTestEvent), request: { params: whkParam }, responses: { 202: jsonResponse("The delivery, queued", deliverySchema), ...errors(401, 403, 404, 409) } }),
    async (c) => {
      const { org, whk } = c.req.valid("param");
      return c.json(toDeliveryDto(await sendTestEvent(ctxOf(c), c.get("principal"), org, whk)), 202);
    },
  )
  .openapi(
    createRoute({ method: "get", path: `${path}/{whk}/deliveries`, tags, summary: "The endpoint's delivery log, newest first", ...needs(listDeliveries), request: { params: whkParam, query: deliveryQuery }, responses: { 200: jsonResponse("Deliveries", pageOf(deliverySchema)), ...errors(400, 401, 403, 404) } }),
    async (c) => {
      const { org, whk } = c.req.valid("param");
      const page = await listDeliveries(ctxOf(c), c.get("principal"), org, whk, c.req.valid("query"));
      return c.json({ items: page.items.map(toDeliveryDto), nextCursor: page.nextCursor }, 200);
    },
  )
  .openapi(
    createRoute({ method: "get", path: `${path}/{whk}/deliveries/{dlv}`, tags, summary: "One delivery with every attempt", ...needs(readDelivery), request: { params: dlvParam }, responses: { 200: jsonResponse("The delivery", deliveryWithAttemptsSchema), ...errors(401, 403, 404) } }),
    async (c) => {
      const { org, whk, dlv } = c.req.valid("param");
      const { delivery, attempts } = await readDelivery(ctxOf(c), c.get("principal"), org, whk, dlv);
      return c.json({ ...toDeliveryDto(delivery), attemptLog: attempts.map(toAttemptDto) }, 200);
    },
  )
  .openapi(
    createRoute({ method: "post", path: `${path}/{whk}/deliveries/{dlv}/retry`, tags, summary: "Send a delivered or failed event again (same webhook-id, a new retry window)", ...needs(retryDelivery), request: { params: dlvParam }, responses: { 202: jsonResponse("The delivery, queued", deliverySchema), ...errors(401, 403, 404, 409) } }),
    async (c) => {
      const { org, whk, dlv } = c.req.valid("param");
      return c.json(toDeliveryDto(await retryDelivery(ctxOf(c), c.get("principal"), org, whk, dlv)), 202);
    },
  );
