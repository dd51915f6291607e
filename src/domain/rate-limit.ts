import { ApiError } from "../errors.ts";
import type { Ctx } from "./context.ts";
import type { MaybePromise } from "../lib/maybe-promise.ts";

/**
 * Brute-force protection for every place a credential is checked (bearer authentication, the
 * token exchange, client authentication at /oauth/*): each FAILED attempt is counted by two rate
 * limiting bindings, AUTH_FAILURES_IP under the caller's IP (`CF-Connecting-IP`; its limit is
 * higher, as many clients can share one NAT address) and AUTH_FAILURES_CLIENT under the client
 * id it claimed. A key over its binding's limit is refused with 429 and `Retry-After` for
 * RATE_LIMIT_BLOCK_SECONDS, before any credential of the request is looked at.
 *
 * Successful requests are never counted, so the hot path pays one Map lookup (none while nothing
 * is blocked). The block is remembered per isolate; another isolate learns of it at the key's
 * next failure there (the binding answers "over" for it at once).
 */

const blocked = new Map<string, number>();
const MAX_BLOCKED = 10_000;

/** The keys a request's failures count under: its IP (when the edge told us) and the claimed client. */
export function failureKeys(ctx: Ctx, clientId?: string | null): string[] {
  const keys: string[] = [];
  if (ctx.meta.ip) keys.push(`ip:${ctx.meta.ip}`);
  if (clientId) keys.push(`client:${clientId.slice(0, 128)}`);
  return keys;
}

const limiterOf = (ctx: Ctx, key: string) => (key.startsWith("ip:") ? ctx.env.AUTH_FAILURES_IP : ctx.env.AUTH_FAILURES_CLIENT);

export const rateLimited = (retryAfterSeconds: number) =>
  new ApiError("rate_limited", "Too many failed authentication attempts; retry later", { headers: { "retry-after": String(retryAfterSeconds) } });

/** Throws 429 when a key is blocked in this isolate. `keys` is only built when something is. */
export function assertNotBlocked(ctx: Ctx, keys: () => string[]): void {
  if (blocked.size === 0) return;
  const now = ctx.now();
  for (const key of keys()) {
    const until = blocked.get(key);
    if (until === undefined) continue;
    if (until > now) throw rateLimited(Math.ceil((until - now) / 1000));
    blocked.delete(key);
  }
}

/** Counts a failed attempt under each key; throws 429 (and blocks the key here) when one is over its limit. */
export async function countFailure(ctx: Ctx, keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  // A limiter that is missing or failing lets the attempt through: it must never lock everyone out.
  const outcomes = await Promise.all(keys.map((key) => limiterOf(ctx, key)?.limit({ key }).catch(() => ({ success: true })) ?? { success: true }));
  const over = keys.filter((_, i) => !outcomes[i]!.success);
  if (over.length === 0) return;
  const seconds = ctx.config.RATE_LIMIT_BLOCK_SECONDS;
  if (blocked.size >= MAX_BLOCKED) blocked.clear();
  for (const key of over) blocked.set(key, ctx.now() + seconds * 1000);
  throw rateLimited(seconds);
}

/**
 * Runs an authentication; a failure (`isFailure`) is counted, and becomes a 429 once a key is over.
 * An attempt answered at once (from the isolate's caches) is answered at once; a failure, sync or
 * not, comes back as a rejected promise.
 */
export function guarded<T>(ctx: Ctx, keys: () => string[], isFailure: (err: unknown) => boolean, attempt: () => MaybePromise<T>): MaybePromise<T> {
  const failed = async (err: unknown): Promise<never> => {
    if (isFailure(err)) await countFailure(ctx, keys());
    throw err;
  };
  let outcome: MaybePromise<T>;
  try {
    assertNotBlocked(ctx, keys);
    outcome = attempt();
  } catch (err) {
    return failed(err);
  }
  return outcome instanceof Promise ? outcome.catch(failed) : outcome;
}

/** Test hook: forget every block of this isolate. */
export function resetBlocks(): void {
  blocked.clear();
}
