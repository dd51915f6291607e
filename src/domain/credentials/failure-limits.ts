import { DomainError } from "../shared/errors.ts";
import type { Ctx } from "../shared/context.ts";
import { isolateState } from "../shared/isolate-state.ts";
import type { MaybePromise } from "../../lib/maybe-promise.ts";

/**
 * Limits on failed authentications, for cost and noise: an access token carries 178 random bits
 * and is not guessed, so the limiters exist to slow down clients that keep failing, never to keep
 * anyone else out. The rules:
 *
 *  - The credential is checked first. A valid credential always passes, whatever others sent
 *    from the same address or for the same client id; only a failing attempt is counted, and only
 *    a failing attempt is refused (429, `Retry-After`) once its key is over the limit.
 *  - A failure counts under one key of the client id it claimed and the source IP
 *    (`CF-Connecting-IP`) together, so that strangers failing for a public client id (ids are JWT
 *    `sub`s) do not add up with the client's own requests from elsewhere.
 *  - The management API (`api:`) and the token endpoints (`token:`, the exchange endpoint and
 *    /oauth/*) count under separate keys.
 *  - Keys with a client id are counted by AUTH_FAILURES_CLIENT; keys of an address alone (bearer
 *    credentials and subject tokens name no client) by AUTH_FAILURES_IP, whose limit is higher as
 *    many clients can share one NAT address.
 *
 * A key over its binding's limit is blocked in this isolate for RATE_LIMIT_BLOCK_SECONDS; another
 * isolate learns of it at the key's next failure there (the binding answers "over" at once).
 */

const failures = isolateState("failure-blocks", () => ({ blocked: new Map<string, number>() }));
const MAX_BLOCKED = 10_000;

/** Which limits a failure counts under: the management API's, or the token endpoints'. */
export type AuthSurface = "api" | "token";

/** The key a request's failures count under (none when neither an IP nor a client id is known). */
export function failureKeys(ctx: Ctx, clientId?: string | null, surface: AuthSurface = "api"): string[] {
  const ip = ctx.meta.ip;
  if (!ip && !clientId) return [];
  const client = clientId ? `client:${clientId.slice(0, 128)}:` : "";
  return [`${surface}:${client}ip:${ip ?? "-"}`];
}

const limiterOf = (ctx: Ctx, key: string) => (key.includes("client:") ? ctx.env.AUTH_FAILURES_CLIENT : ctx.env.AUTH_FAILURES_IP);

export const rateLimited = (retryAfterSeconds: number) =>
  new DomainError("rate_limited", "Too many failed authentication attempts; retry later", { retryAfterSeconds });

/** Throws 429 when a key is blocked in this isolate. `keys` is only built when something is. */
export function assertNotBlocked(ctx: Ctx, keys: () => string[]): void {
  if (failures.blocked.size === 0) return;
  const now = ctx.now();
  for (const key of keys()) {
    const until = failures.blocked.get(key);
    if (until === undefined) continue;
    if (until > now) throw rateLimited(Math.ceil((until - now) / 1000));
    failures.blocked.delete(key);
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
  if (failures.blocked.size >= MAX_BLOCKED) failures.blocked.clear();
  for (const key of over) failures.blocked.set(key, ctx.now() + seconds * 1000);
  throw rateLimited(seconds);
}

/**
 * Runs an authentication. Its success is the answer, always. Its failure (`isFailure`) is
 * refused with 429 while the key is blocked, else counted (a 429 once over the limit), else
 * rethrown as it was.
 */
export async function limitFailedAttempts<T>(ctx: Ctx, keys: () => string[], isFailure: (err: unknown) => boolean, attempt: () => MaybePromise<T>): Promise<T> {
  try {
    return await attempt();
  } catch (err) {
    if (!isFailure(err)) throw err;
    const failedKeys = keys();
    assertNotBlocked(ctx, () => failedKeys);
    await countFailure(ctx, failedKeys);
    throw err;
  }
}
