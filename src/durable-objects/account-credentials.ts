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
import { ExpiringKeys } from "../lib/expiring-keys.ts";

const PENDING = "pending-change";
const REPLAY_AFTER_MS = 15_000;
/** Expired jtis are purged in batches, at most this often (an expired assertion fails on `exp` anyway). */
export const JTI_PURGE_EVERY_MS = 60_000;
/** Jtis held in memory per object, in front of storage. */
export const REPLAY_MEMORY_CAP = 20_000;
/** Accepted jtis reach storage in batches, this often (the crash window of the replay check). */
export const REPLAY_FLUSH_MS = 50;
/** Keys per storage.put(entries) call (the API's limit). */
const PUT_BATCH = 128;
/** The latest expiry of any jti key this object wrote (rememberOnce's bound on what storage may hold). */
const JTI_HORIZON = "jti-horizon";
/** Expired jtis deleted per alarm run; the rest a second later. */
const PURGE_SLICE = 2_000;
const SYSTEM: RequestMeta = { actorId: "system", requestId: null, ip: null, userAgent: null };

/**
 * One instance per service account (named by its id): the single writer of the account's
 * credentials. Every change runs under one lock, is journaled in the object's own storage before
 * it touches KV or D1, and is replayed (on the next call, or by the alarm) if it did not finish.
 * Named `client-jwt:<n>`, `dpop:<n>` or `federation:<issuer>:<n>` (src/domain/credentials/replay.ts),
 * it is a shard of the replay cache of single-use JWTs instead.
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

  /** The jtis rememberOnce accepted or found, in front of the `jti:` keys in storage. */
  private readonly recent = new ExpiringKeys(REPLAY_MEMORY_CAP);
  /** Accepted jtis not yet handed to storage. */
  private unflushed = new Map<string, number>();
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  /** Until when storage may hold a live jti memory lacks (kept by an earlier instance); undefined: not read yet. */
  private storedUntil: number | undefined;
  /** The horizon this instance last wrote. */
  private horizon = 0;
  /** The alarm as this instance last set or read it (undefined: not read yet). */
  private alarmAt: number | null | undefined;

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
    await this.setAlarm(Date.now() + REPLAY_AFTER_MS);
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
    this.alarmAt = null;
    await this.lock.run(() => this.replayPending());
    await this.purgeJtis();
  }

  private async setAlarm(at: number): Promise<void> {
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  /** Forgets jtis whose JWTs have expired, PURGE_SLICE at a time; re-arms the alarm for the rest. */
  private async purgeJtis(): Promise<void> {
    const now = Date.now();
    this.recent.prune(now);
    let next = Infinity;
    let deleted = 0;
    for (const [key, expiresAt] of this.ctx.storage.kv.list<number>({ prefix: "jti:" })) {
      if (expiresAt > now) {
        next = Math.min(next, expiresAt);
      } else if (deleted === PURGE_SLICE) {
        await this.setAlarm(now + 1_000);
        return;
      } else {
        this.ctx.storage.kv.delete(key);
        deleted++;
      }
    }
    if (next !== Infinity) await this.armPurge(next);
  }

  /**
   * Arms the alarm to purge jtis at `expiresAt`, but not sooner than JTI_PURGE_EVERY_MS from now
   * and never later than an alarm already armed (a journal replay). Arming at each next expiry
   * made the alarm fire once per expiring assertion, each time listing every remembered jti: under
   * steady private_key_jwt traffic the object spun on its own alarm. The armed time is kept in a
   * field; it is read again only once it has passed.
   */
  private async armPurge(expiresAt: number): Promise<void> {
    const at = Math.max(expiresAt, Date.now() + JTI_PURGE_EVERY_MS);
    if (this.alarmAt === undefined || (this.alarmAt !== null && this.alarmAt <= Date.now())) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt === null || this.alarmAt > at) await this.setAlarm(at);
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
   * Remembers a single-use JWT's key until `expiresAt` (epoch ms); false when it is remembered
   * already. Memory answers first, then storage (after a restart or an eviction from memory); the
   * check and the set run with no await between, so they are atomic. Accepted keys reach storage
   * in batches every REPLAY_FLUSH_MS without holding the answer for durability (allowUnconfirmed):
   * a crash of the object before its batch is written forgets those keys.
   */
  rememberOnce(key: string, expiresAt: number): boolean {
    const now = Date.now();
    if (this.recent.live(key, now) !== undefined) return false;
    const unflushed = this.unflushed.get(key);
    if (unflushed !== undefined && unflushed > now) return false;
    if (unflushed === undefined && this.mayBeStoredOnly(now)) {
      const stored = this.ctx.storage.kv.get<number>(key);
      if (stored !== undefined && stored > now) {
        this.recent.set(key, stored, now);
        return false;
      }
    }
    this.recent.set(key, expiresAt, now);
    this.unflushed.set(key, expiresAt);
    this.flushTimer ??= setTimeout(() => this.flush(), REPLAY_FLUSH_MS);
    return true;
  }

  /**
   * Whether storage may hold a live key that memory lacks: one written by an earlier instance (up to
   * the horizon it wrote; without one, as the jtis stored before the horizon existed say) or one
   * evicted from memory. Otherwise a miss in memory is a miss, and storage is not read.
   */
  private mayBeStoredOnly(now: number): boolean {
    this.storedUntil ??= this.ctx.storage.kv.get<number>(JTI_HORIZON) ?? this.latestStoredJti();
    return now < Math.max(this.storedUntil, this.recent.evictedUntil);
  }

  private latestStoredJti(): number {
    let latest = 0;
    for (const [, expiresAt] of this.ctx.storage.kv.list<number>({ prefix: "jti:" })) latest = Math.max(latest, expiresAt);
    return latest;
  }

  private flush(): void {
    this.flushTimer = null;
    const entries = [...this.unflushed];
    this.unflushed = new Map();
    let soonest = Infinity;
    let latest = Math.max(this.horizon, this.storedUntil ?? 0);
    for (const [, at] of entries) {
      soonest = Math.min(soonest, at);
      latest = Math.max(latest, at);
    }
    // First, with the keys it covers: the puts of one turn commit together, in order.
    if (latest > this.horizon) entries.unshift([JTI_HORIZON, (this.horizon = latest)]);
    for (let i = 0; i < entries.length; i += PUT_BATCH) {
      const batch = entries.slice(i, i + PUT_BATCH);
      this.ctx.storage.put(Object.fromEntries(batch), { allowUnconfirmed: true }).catch((err) => console.error(JSON.stringify({ level: "error", event: "replay_flush_failed", keys: batch.length, error: String(err) })));
    }
    if (soonest !== Infinity) this.armPurge(soonest).catch((err) => console.error(JSON.stringify({ level: "warn", event: "replay_purge_arm_failed", error: String(err) })));
  }
}
