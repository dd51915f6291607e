import { accountFor } from "../registry/accounts.ts";
import { withPermission } from "./permissions.ts";
import { assign, listAssignments, operationsAt, unassign, type AssignmentInput } from "./role-assignments.ts";

/** The role-assignment operations of one account (`/service-accounts/{sa}/role-assignments`, `/permissions`). */

/** Granting a role: the caller must hold every operation of it at that scope (planAssignments). */
export const assignRole = withPermission("roles.edit", async (gate, orgRef: string, accountId: string, input: AssignmentInput) => {
  const { org, account } = await accountFor(gate, orgRef, accountId);
  return assign(gate.ctx, gate.principal, org, account.id, input);
});

export const listAccountAssignments = withPermission("service-accounts.read", async (gate, orgRef: string, accountId: string) => {
  const { account } = await accountFor(gate, orgRef, accountId);
  return listAssignments(gate.ctx, account.id);
});

/** The operations an account holds at a scope (org, a project id or an environment id). */
export const accountPermissions = withPermission("service-accounts.read", async (gate, orgRef: string, accountId: string, scope: string | undefined) => {
  const { org, account } = await accountFor(gate, orgRef, accountId);
  return operationsAt(gate.ctx, org, account, scope);
});

/**
 * Removing a role takes access away from the account: the escalation guard applies (a weaker
 * admin must not disarm a stronger one), lifted by incident response and marked in the audit log.
 */
export const unassignRole = withPermission(
  "roles.edit",
  async (gate, orgRef: string, accountId: string, assignmentId: string) => {
    const { org, account } = await accountFor(gate, orgRef, accountId, "removes");
    await unassign(gate.ctx, gate.principal, org, account.id, assignmentId);
  },
  { guard: "covers" },
);
