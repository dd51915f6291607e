import { and, eq, inArray, or } from "drizzle-orm";
import { roleAssignments, roles, type Org, type Role } from "../../db/schema.ts";
import { DomainError, notFound } from "../shared/errors.ts";
import { newId } from "../../lib/ids.ts";
import { isUniqueViolation } from "../shared/sql-errors.ts";
import { syncAccounts } from "../credentials/account-object.ts";
import { auditInsert } from "../audit/audit-log.ts";
import { withdrawPending } from "../registry/invitation-cascade.ts";
import type { Ctx } from "../shared/context.ts";
import { orgFor } from "../registry/orgs.ts";
import { BUILTIN_ROLES, effectiveOperations, OPERATIONS, withPermission, type Gate, type Operation } from "./permissions.ts";
import type { Principal } from "../shared/principal.ts";

/** A role as the API shows it: built-in (same in every org) or custom (one org's). */
export interface RoleDef {
  id: string;
  orgId: string | null;
  name: string;
  description: string | null;
  operations: Operation[];
  assignableToServiceAccounts: boolean;
  builtin: boolean;
}

const fromBuiltin = (r: (typeof BUILTIN_ROLES)[number]): RoleDef => ({ ...r, orgId: null, operations: [...r.operations], builtin: true });
const fromRow = (r: Role): RoleDef => ({
  id: r.id,
  orgId: r.orgId,
  name: r.name,
  description: r.description,
  operations: r.operations.filter((op): op is Operation => op in OPERATIONS),
  assignableToServiceAccounts: r.assignableToServiceAccounts,
  builtin: false,
});

/** A role of the org by id or name (built-in first), or undefined. */
export async function findRole(ctx: Ctx, orgId: string, idOrName: string): Promise<RoleDef | undefined> {
  const builtin = BUILTIN_ROLES.find((r) => r.id === idOrName || r.name === idOrName);
  if (builtin) return fromBuiltin(builtin);
  const row = await ctx.db.select().from(roles).where(and(eq(roles.orgId, orgId), or(eq(roles.id, idOrName), eq(roles.name, idOrName)))).get();
  return row ? fromRow(row) : undefined;
}

/** Every role definition among the given ids (built-in and custom), by id. */
export async function rolesById(ctx: Ctx, ids: string[]): Promise<Map<string, RoleDef>> {
  const map = new Map<string, RoleDef>(BUILTIN_ROLES.filter((r) => ids.includes(r.id)).map((r) => [r.id, fromBuiltin(r)]));
  const custom = ids.filter((id) => !map.has(id));
  if (custom.length > 0) for (const row of await ctx.db.select().from(roles).where(inArray(roles.id, custom))) map.set(row.id, fromRow(row));
  return map;
}

const escalation = (missing: string[]) =>
  new DomainError("permission_denied", `You can only grant operations you hold yourself; missing: ${missing.join(", ")}`, { missing });

async function assertHolds(ctx: Ctx, principal: Principal, org: Org, operations: string[]) {
  const held = (await effectiveOperations(ctx, principal, { orgId: org.id })) ?? new Set();
  const missing = [...new Set(operations)].filter((op) => !held.has(op as Operation) && !held.has("platform.root"));
  if (missing.length > 0) throw escalation(missing);
}

/** Custom role names never shadow a built-in role's name or id (roles are addressed by either). */
function assertFreeName(name: string) {
  if (name.startsWith("role_") || BUILTIN_ROLES.some((r) => r.name === name || r.id === name)) {
    throw new DomainError("name_taken", `'${name}' is reserved for built-in roles`);
  }
}

function checkOperations(operations: string[]): Operation[] {
  const unknown = operations.filter((op) => !(op in OPERATIONS) || op === "platform.root");
  if (unknown.length > 0) {
    throw new DomainError("validation_failed", `Unknown or platform-only operations: ${unknown.join(", ")}`, { errors: [{ path: "body.operations", message: "See GET /api/v1/permissions" }] });
  }
  return [...new Set(operations)] as Operation[];
}

export interface RoleInput {
  name: string;
  description?: string | null | undefined;
  operations: string[];
  assignableToServiceAccounts?: boolean | undefined;
}

export const createRole = withPermission("roles.edit", async (gate, orgRef: string, input: RoleInput): Promise<RoleDef> => {
  const { ctx, principal } = gate;
  const org = await orgFor(gate, orgRef);
  const operations = checkOperations(input.operations);
  assertFreeName(input.name);
  await assertHolds(ctx, principal, org, operations);
  const now = ctx.now();
  const row: Role = {
    id: newId("role"),
    orgId: org.id,
    name: input.name,
    description: input.description ?? null,
    operations,
    assignableToServiceAccounts: input.assignableToServiceAccounts ?? true,
    createdAt: now,
    createdBy: principal.accountId,
    updatedAt: now,
  };
  try {
    await ctx.db.batch([
      ctx.db.insert(roles).values(row),
      auditInsert(ctx, { action: "role.created", orgId: org.id, targetType: "role", targetId: row.id, details: { name: row.name, operations } }),
    ]);
  } catch (err) {
    if (isUniqueViolation(err, "roles")) throw new DomainError("name_taken", `A role named '${row.name}' already exists here`);
    throw err;
  }
  return fromRow(row);
});

export const listRoles = withPermission("orgs.read", async (gate, orgRef: string): Promise<RoleDef[]> => {
  const org = await orgFor(gate, orgRef);
  const custom = await gate.ctx.db.select().from(roles).where(eq(roles.orgId, org.id)).orderBy(roles.createdAt);
  return [...BUILTIN_ROLES.map(fromBuiltin), ...custom.map(fromRow)];
});

export const getRole = withPermission("orgs.read", async (gate, orgRef: string, roleRef: string): Promise<RoleDef> => {
  const org = await orgFor(gate, orgRef);
  const role = await findRole(gate.ctx, org.id, roleRef);
  if (!role) throw notFound("Role");
  return role;
});

async function customRoleFor(gate: Gate, orgRef: string, roleRef: string) {
  const org = await orgFor(gate, orgRef);
  const role = await findRole(gate.ctx, org.id, roleRef);
  if (!role) throw notFound("Role");
  if (role.builtin) throw new DomainError("bad_request", "Built-in roles cannot be changed or deleted");
  return { org, role };
}

/** Every account holding the role gets its KV claims rewritten (roles and requestable scopes). */
async function syncHolders(ctx: Ctx, roleId: string, holders?: string[]) {
  const ids = holders ?? (await ctx.db.selectDistinct({ id: roleAssignments.accountId }).from(roleAssignments).where(eq(roleAssignments.roleId, roleId))).map((r) => r.id);
  await syncAccounts(ctx, ids);
}

export const patchRole = withPermission("roles.edit", async (gate, orgRef: string, roleRef: string, input: Partial<RoleInput>): Promise<RoleDef> => {
  const { ctx, principal } = gate;
  const { org, role } = await customRoleFor(gate, orgRef, roleRef);
  const operations = input.operations ? checkOperations(input.operations) : role.operations;
  await assertHolds(ctx, principal, org, [...operations, ...role.operations]);
  const set = {
    name: input.name ?? role.name,
    description: input.description === undefined ? role.description : input.description,
    operations,
    assignableToServiceAccounts: input.assignableToServiceAccounts ?? role.assignableToServiceAccounts,
    updatedAt: ctx.now(),
  };
  assertFreeName(set.name);
  try {
    await ctx.db.batch([
      ctx.db.update(roles).set(set).where(eq(roles.id, role.id)),
      auditInsert(ctx, { action: "role.updated", orgId: org.id, targetType: "role", targetId: role.id, details: { name: set.name, operations } }),
    ]);
  } catch (err) {
    if (isUniqueViolation(err, "roles")) throw new DomainError("name_taken", `A role named '${set.name}' already exists here`);
    throw err;
  }
  await syncHolders(ctx, role.id);
  return { ...role, ...set };
});

/** Deleting a role removes every assignment of it. */
export const deleteRole = withPermission("roles.edit", async (gate, orgRef: string, roleRef: string): Promise<void> => {
  const { ctx, principal } = gate;
  const { org, role } = await customRoleFor(gate, orgRef, roleRef);
  await assertHolds(ctx, principal, org, role.operations);
  const holders = (await ctx.db.selectDistinct({ id: roleAssignments.accountId }).from(roleAssignments).where(eq(roleAssignments.roleId, role.id))).map((r) => r.id);
  await ctx.db.batch([
    ctx.db.delete(roleAssignments).where(eq(roleAssignments.roleId, role.id)),
    withdrawPending(ctx, principal, { roleId: role.id }),
    ctx.db.delete(roles).where(eq(roles.id, role.id)),
    auditInsert(ctx, { action: "role.deleted", orgId: org.id, targetType: "role", targetId: role.id, details: { name: role.name, holders: holders.length } }),
  ]);
  await syncHolders(ctx, role.id, holders);
});
