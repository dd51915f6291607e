import { and, eq, inArray } from "drizzle-orm";
import { invitations } from "../../db/schema.ts";
import type { Ctx } from "../shared/context.ts";
import type { Principal } from "../shared/principal.ts";

/** Cancels the pending invitations to a role, or at scopes, that are being deleted (in the deleting batch). */
export function withdrawPending(ctx: Ctx, principal: Principal, target: { roleId: string } | { scopeIds: string[] }) {
  const which = "roleId" in target ? eq(invitations.roleId, target.roleId) : inArray(invitations.scopeId, target.scopeIds);
  return ctx.db
    .update(invitations)
    .set({ state: "cancelled", respondedAt: ctx.now(), respondedBy: principal.accountId })
    .where(and(which, eq(invitations.state, "pending")));
}
