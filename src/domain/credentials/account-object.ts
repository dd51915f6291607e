import { DomainError } from "../shared/errors.ts";
import { forgetCredentials } from "./record-cache.ts";
import type { Ctx } from "../shared/context.ts";
import type { AccessToken, PublicKey, ServiceAccount } from "../../db/schema.ts";
import type { RequestMeta } from "../shared/context.ts";
import type { AccountPatch, IssueInput, LeakReport, Outcome } from "./plans.ts";
import type { FederatedChange, TrustPolicy } from "./federated-plans.ts";
import type { UseOutcome } from "./token-limits.ts";

/**
 * What the domain asks of an account's Durable Object (src/durable-objects/account-credentials.ts
 * implements it): the single writer of the account's credentials, or a shard of the jti replay cache.
 */
export interface AccountCredentialsRpc {
  issueToken(input: IssueInput, meta: RequestMeta): Promise<Outcome<{ token: AccessToken; secret: string }>>;
  /** `leak`: the token was reported leaked; its `access_token.leaked` event is written with the revocation. */
  revokeToken(accountId: string, tokenId: string, meta: RequestMeta, reason?: string, leak?: LeakReport): Promise<Outcome<{ token: AccessToken }>>;
  revokeAll(accountId: string, reason: string): Promise<Outcome<{ revoked: number }>>;
  regenerateToken(accountId: string, tokenId: string, graceSeconds: number, meta: RequestMeta): Promise<Outcome<{ token: AccessToken; secret: string }>>;
  updateAccount(accountId: string, patch: AccountPatch, meta: RequestMeta): Promise<Outcome<{ account: ServiceAccount }>>;
  sync(accountId: string): Promise<Outcome<object>>;
  addKey(key: PublicKey, meta: RequestMeta): Promise<Outcome<{ key: PublicKey }>>;
  removeKey(accountId: string, keyId: string, meta: RequestMeta): Promise<Outcome<object>>;
  setKeyStatus(accountId: string, keyId: string, status: "active" | "disabled", meta: RequestMeta): Promise<Outcome<{ key: PublicKey }>>;
  /** Marks the account's keys past their expiry (as of `now`, epoch ms) expired. */
  expireKeys(accountId: string, now: number): Promise<Outcome<{ expired: number }>>;
  deleteAccount(accountId: string, meta: RequestMeta): Promise<Outcome<{ account: ServiceAccount; revoked: number }>>;
  /** Creates, updates or deletes one of the account's trust policies (federated credentials). */
  changeFederatedCredential(accountId: string, change: FederatedChange, meta: RequestMeta): Promise<Outcome<{ policy: TrustPolicy | null }>>;
  /**
   * Takes one use of a token with a use limit (refilled first if a refill is due); refused at 0.
   * The count lives in the object's storage, so it is atomic however many isolates ask at once.
   */
  useToken(accountId: string, tokenId: string, meta: RequestMeta): Promise<UseOutcome>;
  /** The uses a limited token has left (a due refill counted), without spending one. */
  usesLeft(accountId: string, tokenId: string): Promise<number>;
  /** A replay shard's check-and-set (src/domain/credentials/replay.ts): false when the key is remembered; over RPC the answer comes as a promise. */
  rememberOnce(key: string, expiresAt: number): boolean | Promise<boolean>;
}

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

/** The same object, for what changes no credential record (use counts): no eviction. */
export function replayCache(ctx: Pick<Ctx, "env">, accountId: string): AccountCredentialsRpc {
  const namespace: DurableObjectNamespace = ctx.env.ACCOUNT_DO;
  return namespace.get(namespace.idFromName(accountId)) as unknown as AccountCredentialsRpc;
}

/** Turns a Durable Object outcome into a value or the DomainError it names. */
export function unwrap<T>(outcome: Outcome<T>): T {
  if (!outcome.ok) throw new DomainError(outcome.code, outcome.detail);
  return outcome.value;
}

/**
 * Rewrites the KV records (claims: roles, scopes, groups) of each account from D1, after a change
 * outside the account's own object altered them (role assignments, roles, scopes, invitations).
 */
export async function syncAccounts(ctx: Pick<Ctx, "env">, accountIds: Iterable<string>): Promise<void> {
  await Promise.all([...new Set(accountIds)].map(async (id) => unwrap(await accountObject(ctx, id).sync(id))));
}
