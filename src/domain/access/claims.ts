import { and, eq, inArray, or } from "drizzle-orm";
import { credentialStatus, environments, orgs, publicKeys, roleAssignments, roles, serviceAccounts, type ClaimMapping, type PublicKey, type RoleAssignment, type ServiceAccount } from "../../db/schema.ts";
import type { Ctx } from "../shared/context.ts";
import type { AccountClaims, AccountRecord } from "../credentials/kv-records.ts";
import { findBuiltinRole, OPERATIONS, roleOperations } from "./permissions.ts";
import { customClaimsOf } from "../signing/custom-claims.ts";

export interface AccountState {
  account: ServiceAccount;
  assignments: RoleAssignment[];
  /** Operations and names of the custom roles among the assignments. */
  customRoles: Map<string, { name: string; operations: string[] }>;
  keys: PublicKey[];
  /** The status list index of each of the account's credentials, by credential id. */
  statusIdx: Map<string, number>;
  /** The custom claim mapping (policy.jwtClaims) of each org the account belongs to or holds a role in. */
  claimMappings: Map<string, ClaimMapping[]>;
  /** The project of each environment the account holds a role on. */
  environmentProjects: Map<string, string>;
}

/** Everything the KV records of an account are computed from, read from D1. */
export async function loadAccountState(ctx: Ctx, accountId: string): Promise<AccountState | null> {
  const [account, assignments, custom, keys, status, policies, envs] = await Promise.all([
    ctx.db.select().from(serviceAccounts).where(eq(serviceAccounts.id, accountId)).get(),
    ctx.db.select().from(roleAssignments).where(eq(roleAssignments.accountId, accountId)),
    ctx.db
      .select({ id: roles.id, name: roles.name, operations: roles.operations })
      .from(roles)
      .innerJoin(roleAssignments, eq(roleAssignments.roleId, roles.id))
      .where(eq(roleAssignments.accountId, accountId)),
    ctx.db.select().from(publicKeys).where(eq(publicKeys.accountId, accountId)),
    ctx.db.select({ id: credentialStatus.credentialId, idx: credentialStatus.idx }).from(credentialStatus).where(eq(credentialStatus.accountId, accountId)),
    ctx.db
      .select({ id: orgs.id, policy: orgs.policy })
      .from(orgs)
      .where(
        or(
          inArray(orgs.id, ctx.db.select({ id: serviceAccounts.orgId }).from(serviceAccounts).where(eq(serviceAccounts.id, accountId))),
          inArray(orgs.id, ctx.db.select({ id: roleAssignments.orgId }).from(roleAssignments).where(eq(roleAssignments.accountId, accountId))),
        ),
      ),
    ctx.db
      .select({ id: environments.id, projectId: environments.projectId })
      .from(environments)
      .innerJoin(roleAssignments, and(eq(roleAssignments.scopeId, environments.id), eq(roleAssignments.scopeType, "environment")))
      .where(eq(roleAssignments.accountId, accountId)),
  ]);
  if (!account) return null;
  return {
    account,
    assignments,
    customRoles: new Map(custom.map((r) => [r.id, r])),
    keys,
    claimMappings: new Map(policies.map((o) => [o.id, o.policy.jwtClaims ?? []])),
    environmentProjects: new Map(envs.map((e) => [e.id, e.projectId])),
    statusIdx: new Map(status.map((s) => [s.id, s.idx])),
  };
}

/**
 * The claims of an account in an org (its home org by default): the roles it holds there and every
 * scope it may request there.
 */
export function claimsOf(state: AccountState, orgId: string | null = state.account.orgId): AccountClaims {
  const { account, assignments, customRoles } = state;
  const platform = account.platformPermissions ?? [];
  const here = assignments.filter((a) => a.orgId === orgId);
  const roleNames = [...new Set(here.map((a) => findBuiltinRole(a.roleId)?.name ?? customRoles.get(a.roleId)?.name ?? a.roleId))];
  // Allowed (downstream) scopes belong to the account's home org; elsewhere only the roles held
  // there count. A scope naming a Keyward operation never comes from allowedScopes (rows written
  // before that rule may still carry some): the account's Keyward scopes are what it holds.
  const scopes = new Set<string>(orgId === account.orgId ? (account.allowedScopes ?? []).filter((s) => !(s in OPERATIONS)) : []);
  if (platform.includes("platform.root")) Object.keys(OPERATIONS).forEach((op) => scopes.add(op));
  platform.forEach((op) => scopes.add(op));
  for (const a of here) roleOperations(a.roleId, customRoles.get(a.roleId)?.operations).forEach((op) => scopes.add(op));
  const customClaims = orgId === null ? undefined : customClaimsIn(state, orgId, here);
  return {
    accountId: account.id,
    orgId: account.orgId,
    status: account.status,
    expiresAt: account.expiresAt,
    platformPermissions: platform,
    groups: account.groups,
    roles: roleNames,
    scopes: [...scopes].sort(),
    allowedCidrs: account.allowedCidrs ?? [],
    tokenEndpointAuthMethod: account.tokenEndpointAuthMethod,
    ...(account.jwtQuota ? { jwtQuota: account.jwtQuota } : {}),
    ...(customClaims ? { customClaims } : {}),
    requireDpop: account.requireDpop ?? false,
  };
}

const single = (ids: Set<string>) => (ids.size === 1 ? [...ids][0]! : null);

/**
 * The org's custom claims for the account. `projectId` / `environmentId` are the project and the
 * environment of its project- and environment-level roles in that org when they name exactly one
 * (none, or several: the claim is left out). `externalId` and metadata are written by the
 * account's home org, so only its home org's JWTs carry them: another org's mapping never lets
 * a foreign org's admin choose the value of a claim in its JWTs.
 */
function customClaimsIn(state: AccountState, orgId: string, here: RoleAssignment[]): Record<string, string> | undefined {
  const mapping = state.claimMappings.get(orgId);
  if (!mapping || mapping.length === 0) return undefined;
  const projects = new Set<string>();
  const envs = new Set<string>();
  for (const a of here) {
    if (a.scopeType === "project") projects.add(a.scopeId);
    if (a.scopeType !== "environment") continue;
    envs.add(a.scopeId);
    const project = state.environmentProjects.get(a.scopeId);
    if (project) projects.add(project);
  }
  const home = orgId === state.account.orgId;
  return customClaimsOf(mapping, {
    externalId: home ? state.account.externalId : null,
    metadata: home ? (state.account.metadata ?? {}) : {},
    projectId: single(projects),
    environmentId: single(envs),
  });
}

export function accountRecordOf(state: AccountState): AccountRecord {
  return {
    account: claimsOf(state),
    // Disabled and expired keys are left out; one past its expiresAt is refused at use (the cron marks it later).
    keys: state.keys.filter((k) => k.status === "active").map((k) => ({ kid: k.kid, alg: k.alg, jwk: k.jwk, expiresAt: k.expiresAt, statusIdx: state.statusIdx.get(k.id) })),
    ...(state.account.jwksUri ? { jwksUri: state.account.jwksUri } : {}),
  };
}
