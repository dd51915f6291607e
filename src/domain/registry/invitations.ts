import { and, eq, exists, inArray, sql } from "drizzle-orm";
import { environments, invitations, orgs, projects, roleAssignments, roles, serviceAccounts, type Invitation, type InvitationState } from "../../db/schema.ts";
import { DomainError, notFound } from "../shared/errors.ts";
import { newId } from "../../lib/ids.ts";
import { syncAccounts } from "../credentials/account-object.ts";
import { accountFor } from "./accounts.ts";
import { auditInsert } from "../audit/audit-log.ts";
import type { Ctx } from "../shared/context.ts";
import { orgFor } from "./orgs.ts";
import type { Principal } from "../shared/principal.ts";
import { findBuiltinRole, withPermission, type Gate } from "../access/permissions.ts";
import { planAssignments, type AssignmentInput } from "../access/role-assignments.ts";

/**
 * Cross-org service accounts: an org invites a service account of another org, by email, to a
 * role at a scope; the account's home-org admins accept or decline on its behalf; only an accepted
 * invitation grants anything, as a role assignment in the inviting org.
 *
 * The inviting org learns nothing about the email it gives: the answer is the same whether an
 * account has it or not (the invitation then waits for one, insertAccount binds it), and its view
 * of an invitation shows the email it gave, never the account or its org. Only the invitee's home
 * org sees which of its accounts an invitation is for.
 */

export interface InviteInput extends AssignmentInput {
  email: string;
}

export const invite = withPermission("invitations.edit", async (gate, orgRef: string, input: InviteInput): Promise<Invitation> => {
  const { ctx, principal } = gate;
  const org = await orgFor(gate, orgRef);
  const email = input.email.toLowerCase();
  const account = await ctx.db.select().from(serviceAccounts).where(eq(serviceAccounts.email, email)).get();
  // The org sees its own accounts anyway: saying so reveals nothing.
  if (account && account.orgId === org.id) throw new DomainError("bad_request", "The account belongs to this org; assign it a role instead");
  const invitee = account && account.orgId !== null ? account : undefined;
  // Validates the role, the scope and that the inviter holds every operation it grants.
  const [planned] = await planAssignments(ctx, principal, org, invitee?.id ?? "", [input]);
  const pending = await ctx.db
    .select({ id: invitations.id })
    .from(invitations)
    .where(and(eq(invitations.orgId, org.id), eq(invitations.email, email), eq(invitations.roleId, planned!.roleId), eq(invitations.scopeId, planned!.scopeId), eq(invitations.state, "pending")))
    .get();
  if (pending) throw new DomainError("conflict", "The same invitation is already pending");
  // Only an accepted invitation of this org can have given the role here, and the org's list shows it.
  if (invitee && (await holds(ctx, invitee.id, planned!))) throw new DomainError("already_assigned", "The account already holds this role at this scope here");
  const row: Invitation = {
    id: newId("invitation"),
    orgId: org.id,
    email,
    accountId: invitee?.id ?? null,
    accountOrgId: invitee?.orgId ?? null,
    roleId: planned!.roleId,
    scopeType: planned!.scopeType,
    scopeId: planned!.scopeId,
    state: "pending",
    assignmentId: null,
    createdAt: ctx.now(),
    createdBy: principal.accountId,
    respondedAt: null,
    respondedBy: null,
  };
  await ctx.db.batch([
    ctx.db.insert(invitations).values(row),
    // The inviting org's audit log says what it asked for, never whether the email exists.
    auditInsert(ctx, { action: "invitation.created", orgId: org.id, targetType: "invitation", targetId: row.id, details: { email, roleId: row.roleId, scopeType: row.scopeType, scopeId: row.scopeId } }),
  ]);
  return row;
});


/** SQL: the invitation's role (unless built in) and its scope still exist. */
function stillGrantable(ctx: Ctx, inv: Invitation) {
  const scopeTable = inv.scopeType === "org" ? orgs : inv.scopeType === "project" ? projects : environments;
  const scope = exists(ctx.db.select({ one: sql`1` }).from(scopeTable).where(eq(scopeTable.id, inv.scopeId)));
  if (findBuiltinRole(inv.roleId)) return scope;
  return and(scope, exists(ctx.db.select({ one: sql`1` }).from(roles).where(and(eq(roles.id, inv.roleId), eq(roles.orgId, inv.orgId)))));
}

/** Whether the account already holds the role at the scope (then a second grant would be a phantom). */
async function holds(ctx: Ctx, accountId: string, a: { roleId: string; scopeType: string; scopeId: string }) {
  const row = await ctx.db
    .select({ id: roleAssignments.id })
    .from(roleAssignments)
    .where(and(eq(roleAssignments.accountId, accountId), eq(roleAssignments.roleId, a.roleId), eq(roleAssignments.scopeType, a.scopeType as never), eq(roleAssignments.scopeId, a.scopeId)))
    .get();
  return row !== undefined;
}

const stateFilter = (state: InvitationState | undefined) => (state ? eq(invitations.state, state) : undefined);

export const listOrgInvitations = withPermission("orgs.read", async (gate, orgRef: string, state?: InvitationState) => {
  const org = await orgFor(gate, orgRef);
  return gate.ctx.db.select().from(invitations).where(and(eq(invitations.orgId, org.id), stateFilter(state))).orderBy(invitations.createdAt);
});

/** The inviting org withdraws an invitation; an accepted one loses the role it granted. */
export const cancelInvitation = withPermission("invitations.edit", async (gate, orgRef: string, invitationId: string): Promise<Invitation> => {
  const { ctx, principal } = gate;
  const org = await orgFor(gate, orgRef);
  const inv = await ctx.db.select().from(invitations).where(and(eq(invitations.id, invitationId), eq(invitations.orgId, org.id))).get();
  if (!inv) throw notFound("Invitation");
  if (inv.state === "declined" || inv.state === "cancelled") return inv;
  const set = { state: "cancelled" as const, respondedAt: ctx.now(), respondedBy: principal.accountId };
  await ctx.db.batch([
    ctx.db.update(invitations).set(set).where(eq(invitations.id, inv.id)),
    ctx.db.delete(roleAssignments).where(eq(roleAssignments.id, inv.assignmentId ?? "")),
    auditInsert(ctx, { action: "invitation.cancelled", orgId: org.id, targetType: "invitation", targetId: inv.id, details: { email: inv.email, wasAccepted: inv.state === "accepted" } }),
  ]);
  if (inv.state === "accepted" && inv.accountId) await syncAccounts(ctx, [inv.accountId]);
  return { ...inv, ...set };
});

export const listAccountInvitations = withPermission("service-accounts.read", async (gate, orgRef: string, accountId: string, state?: InvitationState) => {
  const { account } = await accountFor(gate, orgRef, accountId);
  return gate.ctx.db.select().from(invitations).where(and(eq(invitations.accountId, account.id), stateFilter(state))).orderBy(invitations.createdAt);
});

/** Invitations any account of this org received (the home org's view, for answering them). */
export const listReceivedInvitations = withPermission("service-accounts.read", async (gate, orgRef: string, state?: InvitationState) => {
  const org = await orgFor(gate, orgRef);
  return gate.ctx.db.select().from(invitations).where(and(eq(invitations.accountOrgId, org.id), stateFilter(state))).orderBy(invitations.createdAt);
});

/** The account's home org accepts or declines on its behalf; accepting creates the role assignment in the inviting org. */
async function answerFor(gate: Gate, orgRef: string, accountId: string, invitationId: string, state: "accepted" | "declined"): Promise<Invitation> {
  const { ctx, principal } = gate;
  const { account } = await accountFor(gate, orgRef, accountId);
  const inv = await ctx.db.select().from(invitations).where(and(eq(invitations.id, invitationId), eq(invitations.accountId, account.id))).get();
  if (!inv) throw notFound("Invitation");
  if (inv.state !== "pending") throw new DomainError("conflict", `The invitation is already ${inv.state}`);
  if (state === "accepted" && (await holds(ctx, account.id, inv))) throw new DomainError("already_assigned", "The account already holds this role at this scope there");
  const now = ctx.now();
  const assignmentId = state === "accepted" ? newId("roleAssignment") : null;
  const set = { state, respondedAt: now, respondedBy: principal.accountId, assignmentId };
  const statements = [
    // Only a still-pending invitation changes (two concurrent answers cannot both apply), and it is
    // accepted only while its role and scope still exist (checked in the same transaction).
    ctx.db.update(invitations).set(set).where(and(eq(invitations.id, inv.id), eq(invitations.state, "pending"), assignmentId ? stillGrantable(ctx, inv) : undefined)),
    auditInsert(ctx, { action: `invitation.${state}`, orgId: account.orgId, targetType: "invitation", targetId: inv.id, details: { invitingOrgId: inv.orgId, roleId: inv.roleId } }),
  ];
  if (assignmentId) {
    // Inserted only if the update above accepted the invitation; the unique (account, role, scope)
    // index makes a concurrent second accept a no-op.
    const accepted = ctx.db
      .select({
        id: sql<string>`${assignmentId}`.as("id"),
        accountId: invitations.accountId,
        orgId: invitations.orgId,
        roleId: invitations.roleId,
        scopeType: invitations.scopeType,
        scopeId: invitations.scopeId,
        createdAt: sql<number>`${now}`.as("created_at"),
        createdBy: invitations.createdBy,
      })
      .from(invitations)
      .where(and(eq(invitations.id, inv.id), eq(invitations.state, "accepted"), eq(invitations.assignmentId, assignmentId)));
    statements.push(ctx.db.insert(roleAssignments).select(accepted).onConflictDoNothing() as never);
  }
  await ctx.db.batch(statements as [never, ...never[]]);
  if (assignmentId) {
    const after = await ctx.db.select({ assignmentId: invitations.assignmentId }).from(invitations).where(eq(invitations.id, inv.id)).get();
    if (after?.assignmentId !== assignmentId) {
      throw new DomainError("conflict", "The invitation's role or scope no longer exists, or it was answered meanwhile");
    }
    await syncAccounts(ctx, [account.id]);
  }
  return { ...inv, ...set };
}

export const answerInvitation = withPermission("invitations.edit", answerFor);
