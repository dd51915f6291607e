import { and, eq } from "drizzle-orm";
import { roleAssignments, roles, type ScopeType } from "../../db/schema.ts";
import { DomainError, notFound } from "../shared/errors.ts";
import type { Ctx } from "../shared/context.ts";
import type { Principal } from "../shared/principal.ts";

/** The catalogue of operations (`GET /api/v1/permissions`). Every route declares the one it needs. */
export const OPERATIONS = {
  "platform.root": "Everything, on every org (the bootstrap account)",
  "orgs.read": "Read an org, its policy, projects and environments",
  "orgs.admin": "Edit an org's policy, projects and environments",
  "service-accounts.read": "List and read service accounts, their tokens (hints only), keys, federated credentials and roles",
  "service-accounts.edit": "Create, edit, disable and delete service accounts",
  "service-accounts.access-tokens.edit": "Issue, revoke and regenerate access tokens; add and remove public keys",
  "service-accounts.federated-credentials.edit":
    "Create, edit and delete an account's federated credentials (trust policies letting external OIDC tokens act as it)",
  "service-accounts.incident-response":
    "Take access away from any account of the org, whatever it holds (revoke its tokens, remove its keys and role assignments, disable or delete it, each with the route's own permission); every use is marked in the audit log",
  "roles.edit": "Create, edit and delete custom roles; assign and unassign roles",
  "invitations.edit": "Invite service accounts of other orgs; answer invitations for the org's own accounts",
  "audit.read": "Read the org's audit log",
  "webhooks.read": "List and read the org's webhook endpoints and their delivery log",
  "webhooks.edit": "Create, edit and delete webhook endpoints, rotate their signing secrets, send test events and retry deliveries",
} as const;

export type Operation = keyof typeof OPERATIONS;
export const ORG_OPERATIONS = (Object.keys(OPERATIONS) as Operation[]).filter((op) => op !== "platform.root");

export interface BuiltinRole {
  id: string;
  name: string;
  description: string;
  operations: Operation[];
  assignableToServiceAccounts: boolean;
}

/** Built-in roles, the same in every org. A service account can never own an org. */
export const BUILTIN_ROLES: BuiltinRole[] = [
  {
    id: "role_org-owner",
    name: "org-owner",
    description: "Owns the org; held by people, never by a service account",
    operations: ORG_OPERATIONS,
    assignableToServiceAccounts: false,
  },
  {
    id: "role_org-admin",
    name: "org-admin",
    description: "Everything in the org",
    operations: ORG_OPERATIONS,
    assignableToServiceAccounts: true,
  },
  {
    id: "role_service-account-admin",
    name: "service-account-admin",
    description: "Manage service accounts and their credentials",
    operations: [
      "orgs.read",
      "service-accounts.read",
      "service-accounts.edit",
      "service-accounts.access-tokens.edit",
      "service-accounts.federated-credentials.edit",
    ],
    assignableToServiceAccounts: true,
  },
  {
    id: "role_viewer",
    name: "viewer",
    description: "Read-only access to the org",
    operations: ["orgs.read", "service-accounts.read", "audit.read"],
    assignableToServiceAccounts: true,
  },
];

export function findBuiltinRole(idOrName: string): BuiltinRole | undefined {
  return BUILTIN_ROLES.find((r) => r.id === idOrName || r.name === idOrName);
}

/** Where an operation applies. Permissions granted at a level are inherited downward. */
export interface Scope {
  orgId: string;
  projectId?: string;
  environmentId?: string;
}

interface Grant {
  roleId: string;
  scopeType: ScopeType;
  scopeId: string;
  /** The operations of a custom role (null for a built-in one). */
  custom: string[] | null;
}

/** The operations of a role: built-in from code, custom from its row. */
export function roleOperations(roleId: string, custom: string[] | null | undefined): Operation[] {
  return (findBuiltinRole(roleId)?.operations ?? custom ?? []).filter((op): op is Operation => op in OPERATIONS);
}

const grantCache = new WeakMap<Principal, Map<string, Promise<Grant[]>>>();

/** The columns of a grant, for a query that reads the principal's assignments with something else. */
export const GRANT_COLUMNS = { roleId: roleAssignments.roleId, scopeType: roleAssignments.scopeType, scopeId: roleAssignments.scopeId, custom: roles.operations };

/** A row of a left join onto role_assignments: no assignment gives nulls. */
export interface MaybeGrant {
  roleId: string | null;
  scopeType: ScopeType | null;
  scopeId: string | null;
  custom: string[] | null;
}

/**
 * Hands the check the principal's assignments in an org read by the caller's own statement (the
 * org and its grants in one query), so authorizing in that org reads nothing more this request.
 */
export function primeGrants(principal: Principal, orgId: string, rows: MaybeGrant[]): void {
  let byOrg = grantCache.get(principal);
  if (!byOrg) grantCache.set(principal, (byOrg = new Map()));
  const grants = rows.filter((r): r is Grant => r.roleId !== null && r.scopeType !== null && r.scopeId !== null);
  byOrg.set(orgId, Promise.resolve(grants));
}

/** The principal's role assignments in one org, loaded once per request. */
function grantsIn(ctx: Ctx, principal: Principal, orgId: string): Promise<Grant[]> {
  let byOrg = grantCache.get(principal);
  if (!byOrg) grantCache.set(principal, (byOrg = new Map()));
  let grants = byOrg.get(orgId);
  if (!grants) {
    // A drizzle query is a lazy thenable that runs again on every await: hold its one result.
    grants = Promise.resolve(ctx.db
      .select(GRANT_COLUMNS)
      .from(roleAssignments)
      .leftJoin(roles, eq(roles.id, roleAssignments.roleId))
      .where(and(eq(roleAssignments.accountId, principal.accountId), eq(roleAssignments.orgId, orgId))));
    byOrg.set(orgId, grants);
  }
  return grants;
}

function applies(grant: Grant, scope: Scope): boolean {
  switch (grant.scopeType) {
    case "org":
      return grant.scopeId === scope.orgId;
    case "project":
      return grant.scopeId === scope.projectId;
    case "environment":
      return grant.scopeId === scope.environmentId;
  }
}

export function isPlatformRoot(principal: Principal): boolean {
  return principal.platformPermissions.includes("platform.root");
}

/**
 * The operations a principal holds at a scope, or null when it holds nothing anywhere in that org
 * (then the org and everything in it is invisible to it: 404, never a hint that it exists).
 */
export async function effectiveOperations(ctx: Ctx, principal: Principal, scope: Scope): Promise<Set<Operation> | null> {
  const ops = await heldOperations(ctx, principal, scope);
  if (ops === null || !principal.scopeLimit) return ops;
  const limit = new Set(principal.scopeLimit);
  return new Set([...ops].filter((op) => limit.has(op) || (op !== "platform.root" && limit.has("platform.root"))));
}

async function heldOperations(ctx: Ctx, principal: Principal, scope: Scope): Promise<Set<Operation> | null> {
  // A JWT issued for one org is worth nothing in any other.
  if (principal.orgLimit && principal.orgLimit !== scope.orgId) return null;
  if (isPlatformRoot(principal)) return new Set(Object.keys(OPERATIONS) as Operation[]);
  const grants = await grantsIn(ctx, principal, scope.orgId);
  const platformOps = principal.platformPermissions as Operation[];
  if (grants.length === 0 && platformOps.length === 0) return null;
  const ops = new Set<Operation>(platformOps);
  for (const grant of grants) {
    if (!applies(grant, scope)) continue;
    for (const op of roleOperations(grant.roleId, grant.custom)) ops.add(op);
  }
  return ops;
}

/**
 * The one authorization check: throws 404 when the org is invisible to the principal and 403 naming
 * the missing operation when it is visible but not permitted. Reached only through a Gate.
 */
async function authorize(ctx: Ctx, principal: Principal, operation: Operation, scope: Scope): Promise<void> {
  const ops = await effectiveOperations(ctx, principal, scope);
  if (ops === null) throw notFound("Organization");
  if (!ops.has(operation) && !ops.has("platform.root")) {
    throw new DomainError("permission_denied", `This operation needs the permission ${operation}`, { missing: [operation] });
  }
}

/** Platform-level operations (creating orgs, platform accounts): root only. Reached only through a Gate. */
function authorizePlatform(principal: Principal, operation: Operation): void {
  const held = isPlatformRoot(principal) || principal.platformPermissions.includes(operation);
  const withinScope = !principal.scopeLimit || principal.scopeLimit.includes(operation) || principal.scopeLimit.includes("platform.root");
  if (!held || !withinScope) {
    throw new DomainError("permission_denied", `This operation needs the permission ${operation}`, { missing: [operation] });
  }
}

/**
 * What a domain operation checks its permission with. It is bound to the one permission the
 * operation declares (`withPermission`), so an operation cannot check one permission and declare
 * another: the route's OpenAPI `x-required-permission` is read from the same value.
 */
export interface Gate {
  /** The request's context (after the escalation guard ran, marked when it was lifted for incident response). */
  readonly ctx: Ctx;
  readonly principal: Principal;
  readonly permission: Operation;
  /** Throws 404 when the org is invisible to the principal, 403 unless it holds the permission at `scope`. */
  authorize(scope: Scope): Promise<void>;
  /** Throws 403 unless the principal holds the permission platform-wide. */
  authorizePlatform(): void;
}

/** How an operation guards the account it acts on (the no-escalation guard in role-assignments.ts). */
export type TargetGuard = "none" | "covers";

/** A domain operation, callable as `(ctx, principal, ...args)`, carrying the permission it enforces. */
export type PermissionedOperation<A extends unknown[], R> = ((ctx: Ctx, principal: Principal, ...args: A) => Promise<R>) & {
  readonly permission: Operation;
  readonly guard: TargetGuard;
};

interface GateState {
  ctx: Ctx;
  checked: boolean;
  guarded: boolean;
}

const gates = new WeakMap<Gate, GateState>();

function gateState(gate: Gate): GateState {
  const state = gates.get(gate);
  if (!state) throw new Error("Not a gate made by withPermission");
  return state;
}

/** Records that the escalation guard ran for the operation's target, with the context it hands on. */
export function noteGuarded(gate: Gate, ctx: Ctx = gate.ctx): void {
  const state = gateState(gate);
  state.guarded = true;
  state.ctx = ctx;
}

/**
 * Defines a domain operation with its permission. The body gets a Gate bound to that permission;
 * an operation that returns without having checked it (or, when it declares the target guard,
 * without having run the guard) is a programming error and fails loudly rather than letting a
 * declared permission become documentation only.
 */
export function withPermission<A extends unknown[], R>(
  permission: Operation,
  body: (gate: Gate, ...args: A) => Promise<R>,
  options: { guard?: TargetGuard } = {},
): PermissionedOperation<A, R> {
  const guard = options.guard ?? "none";
  const run = async (ctx: Ctx, principal: Principal, ...args: A): Promise<R> => {
    const state: GateState = { ctx, checked: false, guarded: false };
    const gate: Gate = {
      get ctx() {
        return state.ctx;
      },
      principal,
      permission,
      authorize: async (scope) => {
        await authorize(state.ctx, principal, permission, scope);
        state.checked = true;
      },
      authorizePlatform: () => {
        authorizePlatform(principal, permission);
        state.checked = true;
      },
    };
    gates.set(gate, state);
    const result = await body(gate, ...args);
    if (!state.checked) throw new Error(`An operation needing ${permission} returned without checking it`);
    if (guard === "covers" && !state.guarded) throw new Error(`An operation needing ${permission} returned without running the escalation guard`);
    return result;
  };
  return Object.assign(run, { permission, guard });
}
