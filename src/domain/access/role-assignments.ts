import { and, eq } from "drizzle-orm";
import { environments, projects, roleAssignments, roles, type Org, type RoleAssignment, type ScopeType, type ServiceAccount } from "../../db/schema.ts";
import { DomainError, notFound } from "../shared/errors.ts";
import { newId } from "../../lib/ids.ts";
import { isUniqueViolation } from "../shared/sql-errors.ts";
import { syncAccounts } from "../credentials/account-object.ts";
import { auditInsert } from "../audit/audit-log.ts";
import type { Ctx } from "../shared/context.ts";
import { effectiveOperations, isPlatformRoot, noteGuarded, OPERATIONS, type Gate, type Operation, type Scope } from "./permissions.ts";
import { findRole, rolesById } from "./roles.ts";
import type { Principal } from "../shared/principal.ts";

export interface AssignmentInput {
  role: string;
  scope?: { type: ScopeType; id: string } | undefined;
}

async function resolveScope(ctx: Ctx, org: Org, input: AssignmentInput["scope"]): Promise<{ scope: Scope; type: ScopeType; id: string }> {
  if (!input || input.type === "org") {
    if (input && input.id !== org.id && input.id !== org.slug) throw notFound("Scope");
    return { scope: { orgId: org.id }, type: "org", id: org.id };
  }
  if (input.type === "project") {
    const p = await ctx.db.select().from(projects).where(and(eq(projects.id, input.id), eq(projects.orgId, org.id))).get();
    if (!p) throw notFound("Project");
    return { scope: { orgId: org.id, projectId: p.id }, type: "project", id: p.id };
  }
  const e = await ctx.db.select().from(environments).where(and(eq(environments.id, input.id), eq(environments.orgId, org.id))).get();
  if (!e) throw notFound("Environment");
  return { scope: { orgId: org.id, projectId: e.projectId, environmentId: e.id }, type: "environment", id: e.id };
}

/**
 * Validates assignments for an account of `org` and builds their rows. No privilege escalation:
 * the caller must itself hold every operation of the role at that scope.
 */
export async function planAssignments(ctx: Ctx, principal: Principal, org: Org, accountId: string, inputs: AssignmentInput[]): Promise<RoleAssignment[]> {
  const rows: RoleAssignment[] = [];
  const seen = new Set<string>();
  for (const input of inputs) {
    const role = await findRole(ctx, org.id, input.role);
    if (!role) throw new DomainError("validation_failed", `Unknown role '${input.role}'`, { errors: [{ path: "body.role", message: "Unknown role" }] });
    if (!role.assignableToServiceAccounts) {
      throw new DomainError("role_not_assignable", `The role ${role.name} can never be held by a service account`);
    }
    const { scope, type, id } = await resolveScope(ctx, org, input.scope);
    const key = `${role.id}|${type}|${id}`;
    if (seen.has(key)) throw new DomainError("validation_failed", `The role ${role.name} is listed twice for the same scope`, { errors: [{ path: "body.roles", message: "Duplicate role" }] });
    seen.add(key);
    const missing = await missingOperations(ctx, principal, role.operations, scope);
    if (missing.length > 0) {
      throw new DomainError("permission_denied", `Assigning ${role.name} needs operations you do not hold here: ${missing.join(", ")}`, { missing });
    }
    rows.push({ id: newId("roleAssignment"), accountId, orgId: org.id, roleId: role.id, scopeType: type, scopeId: id, createdAt: ctx.now(), createdBy: principal.accountId });
  }
  return rows;
}

async function missingOperations(ctx: Ctx, principal: Principal, operations: readonly string[], scope: Scope): Promise<string[]> {
  const held = (await effectiveOperations(ctx, principal, scope)) ?? new Set();
  return operations.filter((op) => !held.has(op as never) && !held.has("platform.root"));
}

async function scopeOf(ctx: Ctx, row: RoleAssignment): Promise<Scope> {
  if (row.scopeType === "org") return { orgId: row.orgId };
  if (row.scopeType === "project") return { orgId: row.orgId, projectId: row.scopeId };
  const e = await ctx.db.select({ projectId: environments.projectId }).from(environments).where(eq(environments.id, row.scopeId)).get();
  return { orgId: row.orgId, projectId: e?.projectId, environmentId: row.scopeId };
}

/** What an account holds that the principal does not: operations, and the orgs they are held in. */
interface Uncovered {
  missing: string[];
  orgIds: string[];
}

/**
 * Everything the account holds, wherever it holds it, that the principal does not hold at the same
 * place: each role assignment in every org (its home org and the orgs whose invitations it
 * accepted), its platform permissions, and its downstream allowedScopes (which only a holder of
 * `service-accounts.edit` in its home org could have given it).
 */
async function uncoveredBy(ctx: Ctx, principal: Principal, account: Pick<ServiceAccount, "id" | "orgId" | "allowedScopes" | "platformPermissions">): Promise<Uncovered> {
  const rows = await ctx.db.select().from(roleAssignments).where(eq(roleAssignments.accountId, account.id));
  const defs = await rolesById(ctx, rows.map((r) => r.roleId));
  const missing = new Set<string>();
  const orgIds = new Set<string>();
  const note = (ops: string[], orgId: string | null) => {
    for (const op of ops) missing.add(op);
    if (ops.length > 0 && orgId) orgIds.add(orgId);
  };
  for (const row of rows) {
    const role = defs.get(row.roleId);
    if (role) note(await missingOperations(ctx, principal, role.operations, await scopeOf(ctx, row)), row.orgId);
  }
  const platform = account.platformPermissions ?? [];
  if (!isPlatformRoot(principal)) note(platform.filter((op) => !principal.platformPermissions.includes(op)), null);
  if (account.orgId && downstreamScopes(account.allowedScopes).length > 0) {
    note(await missingOperations(ctx, principal, ["service-accounts.edit"], { orgId: account.orgId }), account.orgId);
  }
  return { missing: [...missing], orgIds: [...orgIds] };
}

/** allowedScopes that do not name a Keyward operation (those never count: Keyward's powers come from roles). */
const downstreamScopes = (scopes: readonly string[] | null | undefined) => (scopes ?? []).filter((s) => !(s in OPERATIONS));

/** Taking access away (revoke, remove a key or role, disable, delete) or handing it out (everything else). */
export type GuardEffect = "grants" | "removes";

const INCIDENT_RESPONSE: Operation = "service-accounts.incident-response";

/**
 * The no-escalation guard, the one for every write on another account's credentials and roles:
 * the principal must hold everything the account holds, in every org where it holds it
 * (`uncoveredBy`), or be the platform root. Otherwise a weaker admin could mint a credential
 * worth more than itself (issue, regenerate, add a key, edit), or disarm a stronger admin
 * (revoke, remove a key or a role, disable, delete).
 *
 * Two exceptions, both only for `removes`, which never hands the caller anything:
 *   - an account may always take its own access away (its own tokens, keys);
 *   - `service-accounts.incident-response` in the account's org lifts the guard, and marks every
 *     audit event the change writes with `incidentResponse: true` (through the context it hands on).
 * For `grants`, an account acting on itself passes only with an unnarrowed credential: a JWT
 * scoped to a few operations must not mint its account a credential holding all of them.
 */
export async function assertCovers(ctx: Ctx, principal: Principal, account: ServiceAccount, effect: GuardEffect): Promise<Ctx> {
  const self = principal.accountId === account.id;
  if (self && (effect === "removes" || (!principal.scopeLimit && !principal.orgLimit))) return ctx;
  const { missing, orgIds } = await uncoveredBy(ctx, principal, account);
  if (missing.length === 0) return ctx;
  if (effect === "removes" && account.orgId) {
    const held = await effectiveOperations(ctx, principal, { orgId: account.orgId });
    if (held?.has(INCIDENT_RESPONSE)) return { ...ctx, meta: { ...ctx.meta, incidentResponse: true } };
  }
  const where = orgIds.length > 0 ? ` (held in ${orgIds.join(", ")})` : "";
  const lift = effect === "removes" ? `, or ${INCIDENT_RESPONSE} in its org to take its access away` : "";
  throw new DomainError("permission_denied", `This account holds operations you do not${where}: ${missing.join(", ")}. Acting on its credentials or roles needs all of them${lift}`, { missing });
}

/** Runs the guard for an operation's target and hands the gate the context to write with. */
export async function guardTarget(gate: Gate, account: ServiceAccount, effect: GuardEffect): Promise<void> {
  noteGuarded(gate, await assertCovers(gate.ctx, gate.principal, account, effect));
}

export function assignmentInserts(ctx: Ctx, rows: RoleAssignment[]) {
  return rows.flatMap((row) => [
    ctx.db.insert(roleAssignments).values(row),
    auditInsert(ctx, {
      action: "role_assignment.created",
      orgId: row.orgId,
      targetType: "service_account",
      targetId: row.accountId,
      details: { assignmentId: row.id, roleId: row.roleId, scopeType: row.scopeType, scopeId: row.scopeId },
    }),
  ]);
}

export async function assign(ctx: Ctx, principal: Principal, org: Org, accountId: string, input: AssignmentInput): Promise<RoleAssignment> {
  const rows = await planAssignments(ctx, principal, org, accountId, [input]);
  try {
    const [first, ...rest] = assignmentInserts(ctx, rows);
    await ctx.db.batch([first!, ...rest]);
  } catch (err) {
    if (isUniqueViolation(err, "role_assignments")) throw new DomainError("already_assigned", "The account already holds this role at this scope");
    throw err;
  }
  await syncAccounts(ctx, [accountId]);
  return rows[0]!;
}


/** An account's assignments, with the names of custom roles. */
export async function listAssignments(ctx: Ctx, accountId: string): Promise<(RoleAssignment & { roleName: string | null })[]> {
  const rows = await ctx.db
    .select({ assignment: roleAssignments, roleName: roles.name })
    .from(roleAssignments)
    .leftJoin(roles, eq(roles.id, roleAssignments.roleId))
    .where(eq(roleAssignments.accountId, accountId))
    .orderBy(roleAssignments.createdAt);
  return rows.map((r) => ({ ...r.assignment, roleName: r.roleName }));
}

export async function unassign(ctx: Ctx, principal: Principal, org: Org, accountId: string, assignmentId: string): Promise<void> {
  const row = await ctx.db
    .select()
    .from(roleAssignments)
    .where(and(eq(roleAssignments.id, assignmentId), eq(roleAssignments.accountId, accountId), eq(roleAssignments.orgId, org.id)))
    .get();
  if (!row) throw notFound("Role assignment");
  await ctx.db.batch([
    ctx.db.delete(roleAssignments).where(eq(roleAssignments.id, row.id)),
    auditInsert(ctx, {
      action: "role_assignment.deleted",
      orgId: org.id,
      targetType: "service_account",
      targetId: accountId,
      details: { assignmentId: row.id, roleId: row.roleId, scopeType: row.scopeType, scopeId: row.scopeId },
    }),
  ]);
  await syncAccounts(ctx, [accountId]);
}

/** `org`, a project id or an environment id, as a scope input. */
export function scopeRef(ref: string | undefined, orgId: string): AssignmentInput["scope"] {
  if (!ref || ref === "org" || ref === orgId) return undefined;
  if (ref.startsWith("prj_")) return { type: "project", id: ref };
  if (ref.startsWith("env_")) return { type: "environment", id: ref };
  throw new DomainError("validation_failed", "scope is org, a project id (prj_…) or an environment id (env_…)", { errors: [{ path: "query.scope", message: "Unknown scope" }] });
}

/** The operations an account holds at a scope (inherited from above included). */
export async function operationsAt(ctx: Ctx, org: Org, account: { id: string; orgId: string | null; platformPermissions: string[] | null }, ref: string | undefined) {
  const { scope, type, id } = await resolveScope(ctx, org, scopeRef(ref, org.id));
  const subject: Principal = { accountId: account.id, orgId: account.orgId, platformPermissions: account.platformPermissions ?? [], credential: { type: "jwt", jti: "" } };
  const ops = (await effectiveOperations(ctx, subject, scope)) ?? new Set();
  return { scope: { type, id }, operations: [...ops].sort() };
}
