import { createRoute, z } from "@hono/zod-openapi";
import type { AuditEvent } from "../../db/schema.ts";
import { orgAuditEvents, platformAuditEvents } from "../../domain/audit/audit-query.ts";
import { ctxOf, errors, iso, jsonResponse, needs, pageOf, pageQuery, router } from "./common.ts";

export const auditQuery = pageQuery.extend({
  actor: z.string().max(100).optional().openapi({ description: "Actor account id" }),
  action: z.string().max(100).optional().openapi({ description: "An action, or a family such as access_token.*" }),
  target: z.string().max(100).optional().openapi({ description: "Target id" }),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
});

export const auditEventSchema = z
  .object({
    id: z.string(),
    orgId: z.string().nullable(),
    actorId: z.string(),
    action: z.string(),
    target: z.object({ type: z.string(), id: z.string() }),
    requestId: z.string().nullable(),
    ip: z.string().nullable(),
    userAgent: z.string().nullable(),
    details: z.record(z.string(), z.unknown()),
    createdAt: z.string(),
  })
  .openapi("AuditEvent");
const toDto = (e: AuditEvent) => ({
  id: e.id,
  orgId: e.orgId,
  actorId: e.actorId,
  action: e.action,
  target: { type: e.targetType, id: e.targetId },
  requestId: e.requestId,
  ip: e.ip,
  userAgent: e.userAgent,
  details: e.details,
  createdAt: iso(e.createdAt)!,
});
const tags = ["Audit"];

export const orgAuditRoutes = router().openapi(
  createRoute({ method: "get", path: "/{org}/audit-events", tags, summary: "The org's audit log, newest first", ...needs(orgAuditEvents), request: { params: z.object({ org: z.string().max(100) }), query: auditQuery }, responses: { 200: jsonResponse("A page of events", pageOf(auditEventSchema)), ...errors(400, 401, 403, 404) } }),
  async (c) => {
    const page = await orgAuditEvents(ctxOf(c), c.get("principal"), c.req.valid("param").org, c.req.valid("query"));
    return c.json({ items: page.items.map(toDto), nextCursor: page.nextCursor }, 200);
  },
);

export const platformAuditRoutes = router().openapi(
  createRoute({ method: "get", path: "/", tags, summary: "Platform-level events (no org), newest first", ...needs(platformAuditEvents), request: { query: auditQuery }, responses: { 200: jsonResponse("A page of events", pageOf(auditEventSchema)), ...errors(400, 401, 403) } }),
  async (c) => {
    const page = await platformAuditEvents(ctxOf(c), c.get("principal"), c.req.valid("query"));
    return c.json({ items: page.items.map(toDto), nextCursor: page.nextCursor }, 200);
  },
);
