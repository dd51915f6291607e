import { ApiError } from "../errors.ts";
import type { Ctx } from "./context.ts";
import type { Outcome } from "./credentials.ts";

/** The Durable Object that owns an account's credentials. */
export function accountObject(ctx: Pick<Ctx, "env">, accountId: string) {
  return ctx.env.ACCOUNT_DO.get(ctx.env.ACCOUNT_DO.idFromName(accountId));
}

/** Turns a Durable Object outcome into a value or the ApiError it names. */
export function unwrap<T>(outcome: Outcome<T>): T {
  if (!outcome.ok) throw new ApiError(outcome.code, outcome.detail);
  return outcome.value;
}

/**
 * Rewrites the KV records (claims: roles, scopes, groups) of each account from D1, after a change
 * outside the account's own object altered them (role assignments, roles, scopes, invitations).
 */
export async function syncAccounts(ctx: Pick<Ctx, "env">, accountIds: Iterable<string>): Promise<void> {
  await Promise.all([...new Set(accountIds)].map(async (id) => unwrap(await accountObject(ctx, id).sync(id))));
}
