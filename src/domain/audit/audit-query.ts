import { and, desc, eq, gte, isNull, lt, lte, or, type SQL } from "drizzle-orm";
import { auditEvents } from "../../db/schema.ts";
import { decodeCursor, encodeCursor } from "../shared/pagination.ts";
import type { Ctx } from "../shared/context.ts";
import { orgFor } from "../registry/orgs.ts";
import { withPermission } from "../access/permissions.ts";

export interface AuditQuery {
  limit: number;
  cursor?: string | undefined;
  actor?: string | undefined;
  action?: string | undefined;
  target?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
}

/** Newest first; the cursor is the last (createdAt, id) seen. */
async function page(ctx: Ctx, scope: SQL | undefined, q: AuditQuery) {
  const t = auditEvents;
  let after: SQL | undefined;
  if (q.cursor) {
    const c = decodeCursor(q.cursor);
    after = or(lt(t.createdAt, c.t), and(eq(t.createdAt, c.t), lt(t.id, c.id)));
  }
  const action = q.action?.endsWith(".*") ? undefined : q.action;
  const rows = await ctx.db
    .select()
    .from(t)
    .where(
      and(
        scope,
        after,
        q.actor ? eq(t.actorId, q.actor) : undefined,
        action ? eq(t.action, action) : undefined,
        q.action?.endsWith(".*") ? gte(t.action, q.action.slice(0, -1)) : undefined,
        q.action?.endsWith(".*") ? lt(t.action, q.action.slice(0, -2) + "/") : undefined,
        q.target ? eq(t.targetId, q.target) : undefined,
        q.since ? gte(t.createdAt, Date.parse(q.since)) : undefined,
        q.until ? lte(t.createdAt, Date.parse(q.until)) : undefined,
      ),
    )
    .orderBy(desc(t.createdAt), desc(t.id))
    .limit(q.limit + 1);
  const items = rows.slice(0, q.limit);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > q.limit && last ? encodeCursor({ t: last.createdAt, id: last.id }) : null };
}

/** An org's audit log (`audit.read`). */
export const orgAuditEvents = withPermission("audit.read", async (gate, orgRef: string, q: AuditQuery) => {
  const org = await orgFor(gate, orgRef);
  return page(gate.ctx, eq(auditEvents.orgId, org.id), q);
});

/** Platform-level events (bootstrap, platform clients, key rotations, jobs): root only. */
export const platformAuditEvents = withPermission("platform.root", async (gate, q: AuditQuery) => {
  gate.authorizePlatform();
  return page(gate.ctx, isNull(auditEvents.orgId), q);
});
