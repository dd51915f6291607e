import { and, eq } from "drizzle-orm";
import { accessTokens, roleAssignments, serviceAccounts, type AccessToken, type ServiceAccount } from "../db/schema.ts";
import type { ErrorCode } from "../errors.ts";
import { newId } from "../lib/ids.ts";
import { generateAccessToken, hashToken, tokenHint } from "./access-token.ts";
import { auditInsert } from "./audit.ts";
import { statement, type Change, type KvOp } from "./credential-change.ts";
import type { Ctx } from "./context.ts";
import { kvExpiration, tokenKey, type TokenRecord } from "./kv-records.ts";

/**
 * The credential changes of one account, computed from D1 state. Only the account's Durable
 * Object calls these (it serializes them), so reading then writing here is race-free.
 */

export type Outcome<T> = { ok: true; value: T } | { ok: false; code: ErrorCode; detail: string };

const fail = (code: ErrorCode, detail: string): Outcome<never> => ({ ok: false, code, detail });

export function isTokenLive(token: AccessToken, now: number): boolean {
  return token.status === "active" && (token.expiresAt === null || token.expiresAt > now);
}

export function isAccountLive(account: ServiceAccount, now: number): boolean {
  return account.status === "active" && (account.expiresAt === null || account.expiresAt > now);
}

/** KV puts that make a token's live secrets (current, and previous during a grace) authenticate. */
function grantOps(token: AccessToken, account: ServiceAccount, now: number): KvOp[] {
  const base: Omit<TokenRecord, "expiresAt"> = {
    tokenId: token.id,
    accountId: account.id,
    orgId: account.orgId,
    accountStatus: account.status,
    accountExpiresAt: account.expiresAt,
    platformPermissions: account.platformPermissions ?? [],
  };
  const put = (hash: string, expiresAt: number | null): KvOp => ({
    op: "put",
    key: tokenKey(hash),
    value: JSON.stringify({ ...base, expiresAt } satisfies TokenRecord),
    expiration: kvExpiration(expiresAt, now),
  });
  const ops = [put(token.secretHash, token.expiresAt)];
  if (token.previousSecretHash && token.previousSecretExpiresAt && token.previousSecretExpiresAt > now) {
    ops.push(put(token.previousSecretHash, token.previousSecretExpiresAt));
  }
  return ops;
}

function revokeOps(token: AccessToken): KvOp[] {
  const ops: KvOp[] = [{ op: "delete", key: tokenKey(token.secretHash) }];
  if (token.previousSecretHash) ops.push({ op: "delete", key: tokenKey(token.previousSecretHash) });
  return ops;
}

async function loadAccount(ctx: Ctx, accountId: string) {
  return ctx.db.select().from(serviceAccounts).where(eq(serviceAccounts.id, accountId)).get();
}

async function liveTokens(ctx: Ctx, accountId: string): Promise<AccessToken[]> {
  const now = ctx.now();
  const rows = await ctx.db
    .select()
    .from(accessTokens)
    .where(and(eq(accessTokens.accountId, accountId), eq(accessTokens.status, "active")));
  return rows.filter((t) => isTokenLive(t, now));
}

export interface IssueInput {
  accountId: string;
  name: string | null;
  expiresAt: number | null;
  limit: number;
}

export async function planIssue(ctx: Ctx, input: IssueInput): Promise<Outcome<{ change: Change; token: AccessToken; secret: string }>> {
  const now = ctx.now();
  const account = await loadAccount(ctx, input.accountId);
  if (!account) return fail("not_found", "Service account not found");
  if (!isAccountLive(account, now)) return fail("account_not_active", "The service account is disabled or expired");
  const live = await liveTokens(ctx, account.id);
  if (live.length >= input.limit) {
    return fail(
      "token_limit_reached",
      `The account already holds ${live.length} active token(s), the org's limit; revoke or regenerate one instead`,
    );
  }
  const secret = generateAccessToken();
  const token: AccessToken = {
    id: newId("token"),
    accountId: account.id,
    orgId: account.orgId,
    name: input.name,
    secretHash: await hashToken(secret),
    hint: tokenHint(secret),
    status: "active",
    expiresAt: input.expiresAt,
    previousSecretHash: null,
    previousSecretExpiresAt: null,
    createdAt: now,
    createdBy: ctx.meta.actorId,
    regeneratedAt: null,
    revokedAt: null,
    revokedBy: null,
    lastUsedAt: null,
  };
  const change: Change = {
    kvBefore: [],
    d1: [
      statement(ctx.db.insert(accessTokens).values(token).onConflictDoNothing()),
      statement(
        auditInsert(ctx, {
          action: "access_token.created",
          orgId: account.orgId,
          targetType: "access_token",
          targetId: token.id,
          details: { accountId: account.id, hint: token.hint, name: token.name, expiresAt: token.expiresAt },
        }),
      ),
    ],
    kvAfter: grantOps(token, account, now),
  };
  return { ok: true, value: { change, token, secret } };
}

async function loadToken(ctx: Ctx, accountId: string, tokenId: string) {
  return ctx.db
    .select()
    .from(accessTokens)
    .where(and(eq(accessTokens.id, tokenId), eq(accessTokens.accountId, accountId)))
    .get();
}

/** Revocation is idempotent: an already dead token yields no change and no audit event. */
export async function planRevoke(ctx: Ctx, accountId: string, tokenId: string): Promise<Outcome<{ change: Change | null; token: AccessToken }>> {
  const token = await loadToken(ctx, accountId, tokenId);
  if (!token) return fail("not_found", "Access token not found");
  if (token.status !== "active") return { ok: true, value: { change: null, token } };
  const now = ctx.now();
  const revoked: AccessToken = { ...token, status: "revoked", revokedAt: now, revokedBy: ctx.meta.actorId };
  const change: Change = {
    kvBefore: revokeOps(token),
    d1: [
      statement(
        ctx.db
          .update(accessTokens)
          .set({ status: "revoked", revokedAt: now, revokedBy: ctx.meta.actorId, previousSecretHash: null, previousSecretExpiresAt: null })
          .where(eq(accessTokens.id, token.id)),
      ),
      statement(
        auditInsert(ctx, {
          action: "access_token.revoked",
          orgId: token.orgId,
          targetType: "access_token",
          targetId: token.id,
          details: { accountId, hint: token.hint },
        }),
      ),
    ],
    kvAfter: [],
  };
  return { ok: true, value: { change, token: { ...revoked, previousSecretHash: null, previousSecretExpiresAt: null } } };
}

/**
 * A new secret for the same token (same id, same expiry). Without a grace the old secret dies
 * before D1 records the new one; with one, the old secret's record is shortened to the grace's end.
 */
export async function planRegenerate(
  ctx: Ctx,
  accountId: string,
  tokenId: string,
  graceSeconds: number,
): Promise<Outcome<{ change: Change; token: AccessToken; secret: string }>> {
  const now = ctx.now();
  const token = await loadToken(ctx, accountId, tokenId);
  if (!token) return fail("not_found", "Access token not found");
  if (!isTokenLive(token, now)) return fail("token_not_active", "Only an active token can be regenerated");
  const account = await loadAccount(ctx, accountId);
  if (!account) return fail("not_found", "Service account not found");
  const secret = generateAccessToken();
  const graceEnd = graceSeconds > 0 ? Math.min(now + graceSeconds * 1000, token.expiresAt ?? Infinity) : null;
  const next: AccessToken = {
    ...token,
    secretHash: await hashToken(secret),
    hint: tokenHint(secret),
    regeneratedAt: now,
    previousSecretHash: graceEnd ? token.secretHash : null,
    previousSecretExpiresAt: graceEnd,
  };
  const kvBefore: KvOp[] = [];
  if (token.previousSecretHash) kvBefore.push({ op: "delete", key: tokenKey(token.previousSecretHash) });
  if (!graceEnd) kvBefore.push({ op: "delete", key: tokenKey(token.secretHash) });
  // With a grace, grantOps below rewrites the old secret's record with the shortened expiry.
  const grants = grantOps(next, account, now);
  const change: Change = {
    kvBefore: graceEnd ? [...kvBefore, ...grants.slice(1)] : kvBefore,
    d1: [
      statement(
        ctx.db
          .update(accessTokens)
          .set({
            secretHash: next.secretHash,
            hint: next.hint,
            regeneratedAt: now,
            previousSecretHash: next.previousSecretHash,
            previousSecretExpiresAt: next.previousSecretExpiresAt,
          })
          .where(eq(accessTokens.id, token.id)),
      ),
      statement(
        auditInsert(ctx, {
          action: "access_token.regenerated",
          orgId: token.orgId,
          targetType: "access_token",
          targetId: token.id,
          details: { accountId, hint: next.hint, previousHint: token.hint, graceSeconds },
        }),
      ),
    ],
    kvAfter: grants.slice(0, 1),
  };
  return { ok: true, value: { change, token: next, secret } };
}

export interface AccountStatePatch {
  status?: "active" | "disabled";
  expiresAt?: number | null;
}

/**
 * A change of account status or validity, mirrored into every live token's KV record. Taking
 * access away writes KV first; giving it back writes D1 first (the order of `Change`).
 */
export async function planAccountState(ctx: Ctx, accountId: string, patch: AccountStatePatch): Promise<Outcome<{ change: Change; account: ServiceAccount }>> {
  const now = ctx.now();
  const account = await loadAccount(ctx, accountId);
  if (!account) return fail("not_found", "Service account not found");
  const next: ServiceAccount = { ...account, ...patch, updatedAt: now };
  const restricts =
    next.status === "disabled" ||
    (next.expiresAt !== null && (account.expiresAt === null || next.expiresAt < account.expiresAt));
  const tokens = await liveTokens(ctx, accountId);
  const kvOps = tokens.flatMap((t) => grantOps(t, next, now));
  const action =
    patch.status && patch.status !== account.status
      ? patch.status === "disabled"
        ? "service_account.disabled"
        : "service_account.enabled"
      : "service_account.validity_changed";
  const change: Change = {
    kvBefore: restricts ? kvOps : [],
    d1: [
      statement(ctx.db.update(serviceAccounts).set({ ...patch, updatedAt: now }).where(eq(serviceAccounts.id, accountId))),
      statement(
        auditInsert(ctx, {
          action,
          orgId: account.orgId,
          targetType: "service_account",
          targetId: accountId,
          details: { status: next.status, expiresAt: next.expiresAt },
        }),
      ),
    ],
    kvAfter: restricts ? [] : kvOps,
  };
  return { ok: true, value: { change, account: next } };
}

/** Deleting an account kills every secret in KV first, then removes the account and its credentials in one batch. */
export async function planDeleteAccount(ctx: Ctx, accountId: string): Promise<Outcome<{ change: Change; account: ServiceAccount; revoked: number }>> {
  const account = await loadAccount(ctx, accountId);
  if (!account) return fail("not_found", "Service account not found");
  const tokens = await ctx.db.select().from(accessTokens).where(eq(accessTokens.accountId, accountId));
  const change: Change = {
    kvBefore: tokens.flatMap(revokeOps),
    d1: [
      statement(ctx.db.delete(accessTokens).where(eq(accessTokens.accountId, accountId))),
      statement(ctx.db.delete(roleAssignments).where(eq(roleAssignments.accountId, accountId))),
      statement(ctx.db.delete(serviceAccounts).where(eq(serviceAccounts.id, accountId))),
      statement(
        auditInsert(ctx, {
          action: "service_account.deleted",
          orgId: account.orgId,
          targetType: "service_account",
          targetId: accountId,
          details: { name: account.name, email: account.email, revokedTokens: tokens.filter((t) => t.status === "active").length },
        }),
      ),
    ],
    kvAfter: [],
  };
  return { ok: true, value: { change, account, revoked: tokens.length } };
}
