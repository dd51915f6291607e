import { ApiError } from "../../http/problem.ts";
import { forgetCredentials } from "./record-cache.ts";
import type { Ctx } from "../shared/context.ts";
import type { Outcome } from "./plans.ts";

/**
 * The Durable Object that owns an account's credentials. Whatever is asked of it may change them,
 * so this isolate forgets the account's cached token records first: a change made through this
 * isolate is honoured here at once.
 */
export function accountObject(ctx: Pick<Ctx, "env">, accountId: string) {
  const stub = replayCache(ctx, accountId);
  forgetCredentials({ accountId });
  // Forget again once the change is done: a request racing it may have cached the old record.
  return new Proxy(stub, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => Promise.resolve(Reflect.apply(value, target, args)).finally(() => forgetCredentials({ accountId }));
    },
  });
}

/** The same object, for its jti replay cache only (no credential change, so no eviction). */
export function replayCache(ctx: Pick<Ctx, "env">, accountId: string) {
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
