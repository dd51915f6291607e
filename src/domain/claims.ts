import { eq } from "drizzle-orm";
import { publicKeys, roleAssignments, serviceAccounts, type PublicKey, type RoleAssignment, type ServiceAccount } from "../db/schema.ts";
import type { Ctx } from "./context.ts";
import type { AccountClaims, AccountRecord } from "./kv-records.ts";
import { findBuiltinRole, OPERATIONS } from "./permissions.ts";

export interface AccountState {
  account: ServiceAccount;
  assignments: RoleAssignment[];
  keys: PublicKey[];
}

/** Everything the KV records of an account are computed from, read from D1. */
export async function loadAccountState(ctx: Ctx, accountId: string): Promise<AccountState | null> {
  const [account, assignments, keys] = await Promise.all([
    ctx.db.select().from(serviceAccounts).where(eq(serviceAccounts.id, accountId)).get(),
    ctx.db.select().from(roleAssignments).where(eq(roleAssignments.accountId, accountId)),
    ctx.db.select().from(publicKeys).where(eq(publicKeys.accountId, accountId)),
  ]);
  return account ? { account, assignments, keys } : null;
}

/** The claims of an account: roles held in its home org and every scope it may request. */
export function claimsOf(state: AccountState): AccountClaims {
  const { account, assignments } = state;
  const platform = account.platformPermissions ?? [];
  const homeAssignments = assignments.filter((a) => a.orgId === account.orgId);
  const roles = [...new Set(homeAssignments.map((a) => findBuiltinRole(a.roleId)?.name ?? a.roleId))];
  const scopes = new Set<string>(account.allowedScopes ?? []);
  if (platform.includes("platform.root")) Object.keys(OPERATIONS).forEach((op) => scopes.add(op));
  platform.forEach((op) => scopes.add(op));
  for (const a of homeAssignments) findBuiltinRole(a.roleId)?.operations.forEach((op) => scopes.add(op));
  return {
    accountId: account.id,
    orgId: account.orgId,
    status: account.status,
    expiresAt: account.expiresAt,
    platformPermissions: platform,
    groups: account.groups,
    roles,
    scopes: [...scopes].sort(),
    tokenEndpointAuthMethod: account.tokenEndpointAuthMethod,
  };
}

export function accountRecordOf(state: AccountState): AccountRecord {
  return {
    account: claimsOf(state),
    keys: state.keys.map((k) => ({ kid: k.kid, alg: k.alg, jwk: k.jwk })),
  };
}
