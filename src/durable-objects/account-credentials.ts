import { DurableObject } from "cloudflare:workers";
import type { AccessToken, PublicKey, ServiceAccount } from "../db/schema.ts";
import type { Bindings } from "../env.ts";
import { createCtx, type Ctx, type RequestMeta } from "../domain/shared/context.ts";
import { runChange, type Change } from "../domain/credentials/change.ts";
import {
  planAccountUpdate,
  planAddKey,
  planDeleteAccount,
  planExpireKeys,
  planSetKeyStatus,
  planIssue,
  planRegenerate,
  planRemoveKey,
  planRevoke,
  planRevokeAll,
  planSync,
  type AccountPatch,
  type IssueInput,
  type LeakReport,
  type Outcome,
} from "../domain/credentials/plans.ts";
import type { AccountCredentialsRpc } from "../domain/credentials/account-object.ts";
import { planFederatedChange, type FederatedChange, type TrustPolicy } from "../domain/credentials/federated-plans.ts";
import { Serial } from "../lib/serial.ts";
import { countedEnv } from "../lib/binding-counts.ts";
import { conflictCode } from "../domain/shared/sql-errors.ts";
import { loadCounter, takeUse, type StoredCounter } from "../domain/credentials/token-uses.ts";
import { refilled, type UseOutcome } from "../domain/credentials/token-limits.ts";

const PENDING = "pending-change";
const REPLAY_AFTER_MS = 15_000;
/** Expired jtis are purged in batches, at most this often (an expired assertion fails on `exp` anyway). */
export const JTI_PURGE_EVERY_MS = 60_000;
const SYSTEM: RequestMeta = { actorId: "system", requestId: null, ip: null, userAgent: null };

/**
 * One instance per service account (named by its id): the single writer of the account's
 * credentials. Every change runs under one lock, is journaled in the object's own storage before
 * it touches KV or D1, and is replayed (on the next call, or by the alarm) if it did not finish.
 * It also remembers the `jti` of every private_key_jwt assertion until the assertion expires.
 */
export class AccountCredentials extends DurableObject<Bindings> implements AccountCredentialsRpc {
  constructor(ctx: DurableObjectState, env: Bindings) {
    // BINDING_COUNTS=on: this object's D1/KV calls count too (src/lib/binding-counts.ts).
    super(ctx, countedEnv(env));
  }

  private readonly lock = new Serial();
  /** Uses of limited tokens: one at a time (the first reads D1), apart from credential changes. */
  private readonly uses = new Serial();
  /** The D1 mirror of use counts, written in the order the uses were taken. */
  private readonly useWrites = new Serial();

  private ctxFor(meta: RequestMeta): Ctx {
    return createCtx(this.env, meta);
  }

  private async replayPending(): Promise<void> {
    const pending = await this.ctx.storage.get<Change>(PENDING);
    if (!pending) return;
    await runChange(this.env, pending);
    await this.ctx.storage.delete(PENDING);
  }

  /**
   * Journal, apply, clear. A constraint violation means D1 refused the batch as a whole, so the
   * change is dropped and KV is rewritten from D1 (undoing any `kvBefore`); any other failure
   * leaves the journal for replay.
   */
  private async apply(accountId: string, change: Change): Promise<Outcome<null>> {
    await this.ctx.storage.put(PENDING, change);
    await this.ctx.storage.setAlarm(Date.now() + REPLAY_AFTER_MS);
    try {
      await runChange(this.env, change);
    } catch (err) {
      const code = conflictCode(err);
      if (!code) throw err;
      await this.ctx.storage.delete(PENDING);
      const sync = await planSync(this.ctxFor(SYSTEM), accountId);
      if (sync.ok) await runChange(this.env, sync.value.change);
      return { ok: false, code, detail: code === "name_taken" ? "A service account with this name already exists here" : "The change conflicts with the current state" };
    }
    await this.ctx.storage.delete(PENDING);
    return { ok: true, value: null };
  }

  /** Plans a change under the lock, applies it, and hands back what the plan produced. */
  private mutate<T extends { change: Change | null }>(accountId: string, plan: () => Promise<Outcome<T>>): Promise<Outcome<Omit<T, "change">>> {
    return this.lock.run(async () => {
      await this.replayPending();
      const outcome = await plan();
      if (!outcome.ok) return outcome;
      const { change, ...rest } = outcome.value;
      if (change) {
        const applied = await this.apply(accountId, change);
        if (!applied.ok) return applied;
      }
      return { ok: true as const, value: rest };
    });
  }

  override async alarm(): Promise<void> {
    await this.lock.run(() => this.replayPending());
    await this.purgeJtis();
  }

  /** Forgets assertion jtis whose assertions have expired; re-arms the alarm for the rest. */
  private async purgeJtis(): Promise<void> {
    const now = Date.now();
    let next = Infinity;
    for (const [key, expiresAt] of this.ctx.storage.kv.list<number>({ prefix: "jti:" })) {
      if (expiresAt <= now) {
        this.ctx.storage.kv.delete(key);
      } else next = Math.min(next, expiresAt);
    }
    if (next !== Infinity) await this.armPurge(next);
  }

  /**
   * Arms the alarm to purge jtis at `expiresAt`, but not sooner than JTI_PURGE_EVERY_MS from now
   * and never later than an alarm already armed (a journal replay). Arming at each next expiry
   * made the alarm fire once per expiring assertion, each time listing every remembered jti: under
   * steady private_key_jwt traffic the object spun on its own alarm.
   */
  private async armPurge(expiresAt: number): Promise<void> {
    const at = Math.max(expiresAt, Date.now() + JTI_PURGE_EVERY_MS);
    const armed = await this.ctx.storage.getAlarm();
    if (armed === null || armed > at) await this.ctx.storage.setAlarm(at);
  }

  issueToken(input: IssueInput, meta: RequestMeta): Promise<Outcome<{ token: AccessToken; secret: string }>> {
    return this.mutate(input.accountId, () => planIssue(this.ctxFor(meta), input));
  }

  revokeToken(accountId: string, tokenId: string, meta: RequestMeta, reason?: string, leak?: LeakReport): Promise<Outcome<{ token: AccessToken }>> {
    return this.mutate(accountId, () => planRevoke(this.ctxFor(meta), accountId, tokenId, reason, leak));
  }

  revokeAll(accountId: string, reason: string): Promise<Outcome<{ revoked: number }>> {
    return this.mutate(accountId, () => planRevokeAll(this.ctxFor(SYSTEM), accountId, reason));
  }

  regenerateToken(accountId: string, tokenId: string, graceSeconds: number, meta: RequestMeta): Promise<Outcome<{ token: AccessToken; secret: string }>> {
    return this.mutate(accountId, () => planRegenerate(this.ctxFor(meta), accountId, tokenId, graceSeconds));
  }

  updateAccount(accountId: string, patch: AccountPatch, meta: RequestMeta): Promise<Outcome<{ account: ServiceAccount }>> {
    return this.mutate(accountId, () => planAccountUpdate(this.ctxFor(meta), accountId, patch));
  }

  /** Rewrites the account's KV records from D1 (after role changes; also the repair path). */
  sync(accountId: string): Promise<Outcome<object>> {
    return this.mutate(accountId, () => planSync(this.ctxFor(SYSTEM), accountId));
  }

  addKey(key: PublicKey, meta: RequestMeta): Promise<Outcome<{ key: PublicKey }>> {
    return this.mutate(key.accountId, () => planAddKey(this.ctxFor(meta), key));
  }

  removeKey(accountId: string, keyId: string, meta: RequestMeta): Promise<Outcome<object>> {
    return this.mutate(accountId, () => planRemoveKey(this.ctxFor(meta), accountId, keyId));
  }

  setKeyStatus(accountId: string, keyId: string, status: "active" | "disabled", meta: RequestMeta): Promise<Outcome<{ key: PublicKey }>> {
    return this.mutate(accountId, () => planSetKeyStatus(this.ctxFor(meta), accountId, keyId, status));
  }

  /** The cron's call: marks the keys past their expiry expired. `now` is the cron's clock (tests advance it). */
  expireKeys(accountId: string, now: number): Promise<Outcome<{ expired: number }>> {
    return this.mutate(accountId, () => {
      const ctx = this.ctxFor(SYSTEM);
      ctx.now = () => Math.max(now, Date.now());
      return planExpireKeys(ctx, accountId);
    });
  }

  deleteAccount(accountId: string, meta: RequestMeta): Promise<Outcome<{ account: ServiceAccount; revoked: number }>> {
    return this.mutate(accountId, () => planDeleteAccount(this.ctxFor(meta), accountId));
  }

  changeFederatedCredential(accountId: string, change: FederatedChange, meta: RequestMeta): Promise<Outcome<{ policy: TrustPolicy | null }>> {
    return this.mutate(accountId, () => planFederatedChange(this.ctxFor(meta), accountId, change));
  }

  /**
   * Takes one use of a limited token. The count in storage is read and written with no await
   * between (the lock covers the first read from D1), so concurrent uses never over-spend; the D1
   * mirror follows in order off the answer's path, except the exhausting use, whose audit event
   * (and webhook) is written before the answer.
   */
  useToken(accountId: string, tokenId: string, meta: RequestMeta): Promise<UseOutcome> {
    return this.uses.run(async () => {
      const key = `uses:${tokenId}`;
      const ctx = this.ctxFor({ ...meta, actorId: accountId });
      const stored = this.ctx.storage.kv.get<StoredCounter>(key) ?? (await loadCounter(ctx, accountId, tokenId));
      if (!stored) return { accepted: false, remaining: 0, exhausted: false };
      const { counter, outcome, change } = takeUse(ctx, tokenId, stored);
      this.ctx.storage.kv.put(key, counter);
      if (change) {
        const written = this.useWrites.run(() => runChange(this.env, change));
        const logged = written.catch((err) => console.error(JSON.stringify({ level: "warn", event: "token_use_mirror_failed", tokenId, error: String(err) })));
        if (outcome.exhausted) await logged;
        else this.ctx.waitUntil(logged);
      }
      return outcome;
    });
  }

  usesLeft(accountId: string, tokenId: string): Promise<number> {
    return this.uses.run(async () => {
      const stored = this.ctx.storage.kv.get<StoredCounter>(`uses:${tokenId}`) ?? (await loadCounter(this.ctxFor(SYSTEM), accountId, tokenId));
      return stored ? refilled(stored, Date.now()).remaining : 0;
    });
  }

  /**
   * Records an assertion's `jti` until `expiresAt` (epoch ms); false when it was already used.
   * The synchronous storage API makes the check-and-set atomic.
   */
  rememberJti(jti: string, expiresAt: number): boolean {
    const key = `jti:${jti}`;
    const seen = this.ctx.storage.kv.get<number>(key);
    if (seen !== undefined && seen > Date.now()) return false;
    this.ctx.storage.kv.put(key, expiresAt);
    // The alarm purges the replay cache once entries expire.
    void this.armPurge(expiresAt);
    return true;
  }

  /**
   * The same check-and-set for DPoP proofs, answered without waiting for the write to be durable
   * (`allowUnconfirmed`): the input gate keeps the get and the put atomic, and a proof seen here is
   * refused at once; only a crash of the object within the write's commit could forget a jti.
   * Waiting on the output gate for every proof made it the token endpoint's main cost.
   */
  async rememberProofJti(jti: string, expiresAt: number): Promise<boolean> {
    const key = `jti:${jti}`;
    const seen = await this.ctx.storage.get<number>(key);
    if (seen !== undefined && seen > Date.now()) return false;
    await this.ctx.storage.put(key, expiresAt, { allowUnconfirmed: true });
    void this.armPurge(expiresAt);
    return true;
  }
}
