import { eq } from "drizzle-orm";
import { publicKeys, roleAssignments, roles, serviceAccounts, type PublicKey, type RoleAssignment, type ServiceAccount } from "../../db/schema.ts";
import type { Ctx } from "../shared/context.ts";
import type { AccountClaims, AccountRecord } from "../credentials/kv-records.ts";
import { findBuiltinRole, OPERATIONS, roleOperations } from "./permissions.ts";

export interface AccountState {
  account: ServiceAccount;
  assignments: RoleAssignment[];
  /** Operations and names of the custom roles among the assignments. */
  customRoles: Map<string, { name: string; operations: string[] }>;
  keys: PublicKey[];
}

/** Everything the KV records of an account are computed from, read from D1. */
export async function loadAccountState(ctx: Ctx, accountId: string): Promise<AccountState | null> {
  const [account, assignments, custom, keys] = await Promise.all([
    ctx.db.select().from(serviceAccounts).where(eq(serviceAccounts.id, accountId)).get(),
    ctx.db.select().from(roleAssignments).where(eq(roleAssignments.accountId, accountId)),
    ctx.db
      .select({ id: roles.id, name: roles.name, operations: roles.operations })
      .from(roles)
      .innerJoin(roleAssignments, eq(roleAssignments.roleId, roles.id))
      .where(eq(roleAssignments.accountId, accountId)),
    ctx.db.select().from(publicKeys).where(eq(publicKeys.accountId, accountId)),
  ]);
  return account ? { account, assignments, customRoles: new Map(custom.map((r) => [r.id, r])), keys } : null;
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
    requireDpop: account.requireDpop ?? false,
  };
}

export function accountRecordOf(state: AccountState): AccountRecord {
  return {
    account: claimsOf(state),
    keys: state.keys.map((k) => ({ kid: k.kid, alg: k.alg, jwk: k.jwk })),
  };
}
