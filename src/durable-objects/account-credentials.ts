import { DurableObject } from "cloudflare:workers";
import type { AccessToken, ServiceAccount } from "../db/schema.ts";
import type { Bindings } from "../env.ts";
import { createCtx, type Ctx, type RequestMeta } from "../domain/context.ts";
import { runChange, type Change } from "../domain/credential-change.ts";
import {
  planAccountState,
  planDeleteAccount,
  planIssue,
  planRegenerate,
  planRevoke,
  type AccountStatePatch,
  type IssueInput,
  type Outcome,
} from "../domain/credentials.ts";

const PENDING = "pending-change";
const REPLAY_AFTER_MS = 15_000;

/**
 * One instance per service account (named by its id): the single writer of the account's
 * credentials. Every change runs under one lock, is journaled in the object's own storage before
 * it touches KV or D1, and is replayed (on the next call, or by the alarm) if it did not finish.
 */
export class AccountCredentials extends DurableObject<Bindings> {
  private queue: Promise<unknown> = Promise.resolve();

  /** Runs `fn` after every earlier call has finished: D1 and KV awaits would otherwise interleave calls. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private ctxFor(meta: RequestMeta): Ctx {
    return createCtx(this.env, meta);
  }

  private async replayPending(): Promise<void> {
    const pending = await this.ctx.storage.get<Change>(PENDING);
    if (!pending) return;
    await runChange(this.env, pending);
    await this.ctx.storage.delete(PENDING);
  }

  private async apply(change: Change): Promise<void> {
    await this.ctx.storage.put(PENDING, change);
    await this.ctx.storage.setAlarm(Date.now() + REPLAY_AFTER_MS);
    await runChange(this.env, change);
    await this.ctx.storage.delete(PENDING);
  }

  /** Plans a change under the lock, applies it, and hands back what the plan produced. */
  private mutate<T extends { change: Change | null }>(plan: () => Promise<Outcome<T>>): Promise<Outcome<Omit<T, "change">>> {
    return this.exclusive(async () => {
      await this.replayPending();
      const outcome = await plan();
      if (!outcome.ok) return outcome;
      const { change, ...rest } = outcome.value;
      if (change) await this.apply(change);
      return { ok: true as const, value: rest };
    });
  }

  override async alarm(): Promise<void> {
    await this.exclusive(() => this.replayPending());
  }

  issueToken(input: IssueInput, meta: RequestMeta): Promise<Outcome<{ token: AccessToken; secret: string }>> {
    return this.mutate(() => planIssue(this.ctxFor(meta), input));
  }

  revokeToken(accountId: string, tokenId: string, meta: RequestMeta): Promise<Outcome<{ token: AccessToken }>> {
    return this.mutate(() => planRevoke(this.ctxFor(meta), accountId, tokenId));
  }

  regenerateToken(
    accountId: string,
    tokenId: string,
    graceSeconds: number,
    meta: RequestMeta,
  ): Promise<Outcome<{ token: AccessToken; secret: string }>> {
    return this.mutate(() => planRegenerate(this.ctxFor(meta), accountId, tokenId, graceSeconds));
  }

  setAccountState(accountId: string, patch: AccountStatePatch, meta: RequestMeta): Promise<Outcome<{ account: ServiceAccount }>> {
    return this.mutate(() => planAccountState(this.ctxFor(meta), accountId, patch));
  }

  deleteAccount(accountId: string, meta: RequestMeta): Promise<Outcome<{ account: ServiceAccount; revoked: number }>> {
    return this.mutate(() => planDeleteAccount(this.ctxFor(meta), accountId));
  }
}
