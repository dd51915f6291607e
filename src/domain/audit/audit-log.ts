import { auditEvents } from "../../db/schema.ts";
import { newId } from "../../lib/ids.ts";
import type { Ctx } from "../shared/context.ts";

export interface AuditInput {
  action: string;
  orgId: string | null;
  targetType: string;
  targetId: string;
  /** Small, secret-free facts about the change (names, hints, expiries). */
  details?: Record<string, unknown>;
}

/** The insert of one audit event, to be batched with the change it records so both commit or neither. */
export function auditInsert(ctx: Pick<Ctx, "db" | "meta" | "now">, input: AuditInput) {
  return ctx.db.insert(auditEvents).values(auditRow(ctx, input)).onConflictDoNothing();
}

/** The row of one audit event (several are inserted at once by a buffered writer). */
export function auditRow(ctx: Pick<Ctx, "meta" | "now">, input: AuditInput) {
  return {
    id: newId("event"),
    orgId: input.orgId,
    actorId: ctx.meta.actorId,
    action: input.action,
    targetType: input.targetType,
    targetId: input.targetId,
    requestId: ctx.meta.requestId,
    ip: ctx.meta.ip,
    userAgent: ctx.meta.userAgent?.slice(0, 256) ?? null,
    details: ctx.meta.incidentResponse ? { ...input.details, incidentResponse: true } : (input.details ?? {}),
    createdAt: ctx.now(),
  };
}
