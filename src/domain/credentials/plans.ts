import { and, eq } from "drizzle-orm";
import { accessTokens, federatedCredentials, invitations, publicKeys, roleAssignments, serviceAccounts, type AccessToken, type PublicKey, type ServiceAccount } from "../../db/schema.ts";
import type { ErrorCode } from "../shared/errors.ts";
import { newId } from "../../lib/ids.ts";
import { generateAccessToken, hashToken, tokenHint } from "./access-token.ts";
import { auditInsert, type AuditInput } from "../audit/audit-log.ts";
import { accountRecordOf, claimsOf, loadAccountState, type AccountState } from "../access/claims.ts";
import { statement, type Change, type KvOp } from "./change.ts";
import type { Ctx } from "../shared/context.ts";
import { OWN_JWT_CLOCK_SKEW_SECONDS } from "../signing/jwt.ts";
import { accountKey, revokedTokenKey, tokenKey, type AccountClaims, type TokenRecord } from "./kv-records.ts";
import { longestJwtLifetimeSeconds } from "../signing/lifetime.ts";
import { checkRestrictions, recordRestrictions, type TokenRestrictions } from "./token-limits.ts";
import { allocateStatusIdx, statusInsert } from "./status-index.ts";

/**
 * The credential changes of one account, computed from D1 state. Only the account's Durable
 * Object calls these (it serializes them), so reading then writing here is race-free.
 */

export type Outcome<T> = { ok: true; value: T } | { ok: false; code: ErrorCode; detail: string };

const fail = (code: ErrorCode, detail: string): Outcome<never> => ({ ok: false, code, detail });
const accountNotFound = () => fail("not_found", "Service account not found");

export function isTokenLive(token: AccessToken, now: number): boolean {
  return token.status === "active" && (token.expiresAt === null || token.expiresAt > now);
}

export function isAccountLive(account: ServiceAccount, now: number): boolean {
  return account.status === "active" && (account.expiresAt === null || account.expiresAt > now);
}

/** KV puts that make a token's live secrets (current, and previous during a grace) authenticate. */
function grantOps(token: AccessToken, claims: AccountClaims, now: number, statusIdx: number | undefined): KvOp[] {
  const put = (hash: string, expiresAt: number | null): KvOp => ({
    op: "put",
    key: tokenKey(hash),
    value: JSON.stringify({ tokenId: token.id, expiresAt, tokenExpiresAt: token.expiresAt, account: claims, ...recordRestrictions(token), statusIdx } satisfies TokenRecord),
    expiresAt,
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

/** Slack on a revocation marker's life, for a journaled change replayed a while after it was planned. */
const MARKER_SLACK_MS = 5 * 60_000;

/**
 * KV puts that kill every JWT minted from the tokens (`revoked-token:<id>`, checked on every use
 * of a JWT whose source_token_id it is), kept as long as such a JWT could still verify.
 */
function revocationMarkerOps(ctx: Ctx, tokens: AccessToken[]): KvOp[] {
  const expiresAt = ctx.now() + (longestJwtLifetimeSeconds(ctx.config) + OWN_JWT_CLOCK_SKEW_SECONDS) * 1000 + MARKER_SLACK_MS;
  return tokens.map((t) => ({ op: "put", key: revokedTokenKey(t.id), value: "1", expiresAt }));
}

const accountRecordOp = (state: AccountState): KvOp => ({
  op: "put",
  key: accountKey(state.account.id),
  value: JSON.stringify(accountRecordOf(state)),
  expiresAt: null,
});

async function liveTokens(ctx: Ctx, accountId: string): Promise<AccessToken[]> {
  const now = ctx.now();
  const rows = await ctx.db
    .select()
    .from(accessTokens)
    .where(and(eq(accessTokens.accountId, accountId), eq(accessTokens.status, "active")));
  return rows.filter((t) => isTokenLive(t, now));
}

/** Every KV record of the account as `state` says it should be: the account record and each live token. */
async function recordOps(ctx: Ctx, state: AccountState): Promise<KvOp[]> {
  const claims = claimsOf(state);
  const tokens = await liveTokens(ctx, state.account.id);
  return [accountRecordOp(state), ...tokens.flatMap((t) => grantOps(t, claims, ctx.now(), state.statusIdx.get(t.id)))];
}

const audited = (ctx: Ctx, input: AuditInput) => statement(auditInsert(ctx, input));

export interface IssueInput {
  accountId: string;
  name: string | null;
  expiresAt: number | null;
  limit: number;
  /** The token's own scopes, networks and use limit (checked here against the account as it is now). */
  restrictions?: TokenRestrictions | undefined;
}

export async function planIssue(ctx: Ctx, input: IssueInput): Promise<Outcome<{ change: Change; token: AccessToken; secret: string }>> {
  const now = ctx.now();
  const state = await loadAccountState(ctx, input.accountId);
  if (!state) return accountNotFound();
  const { account } = state;
  if (!isAccountLive(account, now)) return fail("account_not_active", "The service account is disabled or expired");
  const live = await liveTokens(ctx, account.id);
  if (live.length >= input.limit) {
    return fail(
      "token_limit_reached",
      `The account already holds ${live.length} active token(s), the org's limit; revoke or regenerate one instead`,
    );
  }
  const restricted = checkRestrictions(input.restrictions ?? {}, claimsOf(state), now);
  if (!restricted.ok) return fail(restricted.code, restricted.detail);
  const secret = generateAccessToken();
  const statusIdx = await allocateStatusIdx(ctx);
  const token: AccessToken = {
    ...restricted.columns,
    id: newId("token"),
    accountId: account.id,
    orgId: account.orgId,
    name: input.name,
    secretHash: hashToken(secret),
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
      statusInsert(ctx, statusIdx, "access_token", token.id, account.id),
      statement(ctx.db.insert(accessTokens).values(token).onConflictDoNothing()),
      audited(ctx, {
        action: "access_token.created",
        orgId: account.orgId,
        targetType: "access_token",
        targetId: token.id,
        details: {
          accountId: account.id,
          hint: token.hint,
          name: token.name,
          expiresAt: token.expiresAt,
          ...(token.scopes ? { scopes: token.scopes } : {}),
          ...(token.allowedCidrs ? { allowedCidrs: token.allowedCidrs } : {}),
          ...(token.remainingUses !== null ? { remainingUses: token.remainingUses } : {}),
          ...(token.refillAmount !== null ? { refill: { amount: token.refillAmount, intervalSeconds: token.refillIntervalMs! / 1000 } } : {}),
        },
      }),
    ],
    kvAfter: [accountRecordOp(state), ...grantOps(token, claimsOf(state), now, statusIdx)],
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

/** Where a leaked secret was found, as its reporter says (docs/leaked-tokens.md); small, secret-free facts. */
export interface LeakReport {
  /** `github`: the secret scanning partner programme; `report`: POST /api/v1/leaked-tokens. */
  reporter: "github" | "report";
  /** What kind of place it was found in, e.g. `content`, `commit`, `gist` (GitHub's `source`). */
  source: string | null;
  url: string | null;
}

/**
 * Revocation is idempotent: an already dead token yields no change and no audit event. A leak
 * report adds its `access_token.leaked` event to the same batch, so the webhook outbox sees both.
 */
export async function planRevoke(ctx: Ctx, accountId: string, tokenId: string, reason?: string, leak?: LeakReport): Promise<Outcome<{ change: Change | null; token: AccessToken }>> {
  const token = await loadToken(ctx, accountId, tokenId);
  if (!token) return fail("not_found", "Access token not found");
  if (token.status !== "active") return { ok: true, value: { change: null, token } };
  const now = ctx.now();
  const set = { status: "revoked" as const, revokedAt: now, revokedBy: ctx.meta.actorId, previousSecretHash: null, previousSecretExpiresAt: null };
  const change: Change = {
    kvBefore: [...revokeOps(token), ...revocationMarkerOps(ctx, [token])],
    d1: [
      statement(ctx.db.update(accessTokens).set(set).where(eq(accessTokens.id, token.id))),
      audited(ctx, { action: "access_token.revoked", orgId: token.orgId, targetType: "access_token", targetId: token.id, details: { accountId, hint: token.hint, ...(reason ? { reason } : {}) } }),
      ...(leak
        ? [audited(ctx, { action: "access_token.leaked", orgId: token.orgId, targetType: "access_token", targetId: token.id, details: { accountId, hint: token.hint, ...leak } })]
        : []),
    ],
    kvAfter: [],
  };
  return { ok: true, value: { change, token: { ...token, ...set } } };
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
  const state = await loadAccountState(ctx, accountId);
  if (!state) return accountNotFound();
  const secret = generateAccessToken();
  const graceEnd = graceSeconds > 0 ? Math.min(now + graceSeconds * 1000, token.expiresAt ?? Infinity) : null;
  const next: AccessToken = {
    ...token,
    secretHash: hashToken(secret),
    hint: tokenHint(secret),
    regeneratedAt: now,
    previousSecretHash: graceEnd ? token.secretHash : null,
    previousSecretExpiresAt: graceEnd,
  };
  const kvBefore: KvOp[] = [];
  if (token.previousSecretHash) kvBefore.push({ op: "delete", key: tokenKey(token.previousSecretHash) });
  if (!graceEnd) kvBefore.push({ op: "delete", key: tokenKey(token.secretHash) });
  // [new secret, old secret with the grace's end]: the old one is shortened before D1 commits.
  const [grantNew, ...shortenOld] = grantOps(next, claimsOf(state), now, state.statusIdx.get(token.id));
  const change: Change = {
    kvBefore: [...kvBefore, ...shortenOld],
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
      audited(ctx, {
        action: "access_token.regenerated",
        orgId: token.orgId,
        targetType: "access_token",
        targetId: token.id,
        details: { accountId, hint: next.hint, previousHint: token.hint, graceSeconds },
      }),
    ],
    kvAfter: [grantNew!],
  };
  return { ok: true, value: { change, token: next, secret } };
}

export type AccountPatch = Partial<
  Pick<ServiceAccount, "name" | "nameKey" | "displayName" | "description" | "groups" | "externalId" | "metadata" | "status" | "expiresAt" | "allowedScopes" | "allowedCidrs" | "jwtQuota" | "jwksUri" | "requireDpop">
>;

/**
 * Any edit of an account, mirrored into its KV records. Taking access away (disable, shorter
 * validity) writes KV first; anything else writes D1 first (the order of `Change`).
 */
export async function planAccountUpdate(ctx: Ctx, accountId: string, patch: AccountPatch): Promise<Outcome<{ change: Change; account: ServiceAccount }>> {
  const now = ctx.now();
  const state = await loadAccountState(ctx, accountId);
  if (!state) return accountNotFound();
  const { account } = state;
  const next: ServiceAccount = { ...account, ...patch, updatedAt: now };
  const restricts =
    (next.status === "disabled" && account.status !== "disabled") ||
    (next.expiresAt !== null && (account.expiresAt === null || next.expiresAt < account.expiresAt)) ||
    patch.allowedCidrs !== undefined ||
    (patch.jwksUri !== undefined && patch.jwksUri !== account.jwksUri) ||
    (patch.requireDpop === true && !account.requireDpop);
  const kvOps = await recordOps(ctx, { ...state, account: next });
  const statusChanged = patch.status !== undefined && patch.status !== account.status;
  const action = statusChanged ? (patch.status === "disabled" ? "service_account.disabled" : "service_account.enabled") : "service_account.updated";
  const change: Change = {
    kvBefore: restricts ? kvOps : [],
    d1: [
      statement(ctx.db.update(serviceAccounts).set({ ...patch, updatedAt: now }).where(eq(serviceAccounts.id, accountId))),
      audited(ctx, {
        action,
        orgId: account.orgId,
        targetType: "service_account",
        targetId: accountId,
        details: {
          fields: Object.keys(patch).filter((k) => k !== "nameKey"),
          status: next.status,
          expiresAt: next.expiresAt,
          ...(patch.metadata !== undefined ? { metadataKeys: Object.keys(patch.metadata) } : {}),
        },
      }),
    ],
    kvAfter: restricts ? [] : kvOps,
  };
  return { ok: true, value: { change, account: next } };
}

/** Rewrites every KV record of the account from D1 (after role changes, and to repair drift). */
export async function planSync(ctx: Ctx, accountId: string): Promise<Outcome<{ change: Change }>> {
  const state = await loadAccountState(ctx, accountId);
  if (!state) return { ok: true, value: { change: { kvBefore: [{ op: "delete", key: accountKey(accountId) }], d1: [], kvAfter: [] } } };
  return { ok: true, value: { change: { kvBefore: [], d1: [], kvAfter: await recordOps(ctx, state) } } };
}

export async function planAddKey(ctx: Ctx, key: PublicKey): Promise<Outcome<{ change: Change; key: PublicKey }>> {
  const state = await loadAccountState(ctx, key.accountId);
  if (!state) return accountNotFound();
  if (state.keys.some((k) => k.kid === key.kid)) return fail("key_exists", `The account already has a key with kid '${key.kid}'`);
  if (state.keys.length >= 10) return fail("key_limit_reached", "An account holds at most 10 public keys");
  const statusIdx = await allocateStatusIdx(ctx);
  const change: Change = {
    kvBefore: [],
    d1: [
      statusInsert(ctx, statusIdx, "public_key", key.id, key.accountId),
      statement(ctx.db.insert(publicKeys).values(key).onConflictDoNothing()),
      audited(ctx, {
        action: "public_key.created",
        orgId: key.orgId,
        targetType: "public_key",
        targetId: key.id,
        details: { accountId: key.accountId, kid: key.kid, alg: key.alg, fingerprint: key.fingerprint, expiresAt: key.expiresAt },
      }),
    ],
    kvAfter: [accountRecordOp({ ...state, keys: [...state.keys, key], statusIdx: new Map(state.statusIdx).set(key.id, statusIdx) })],
  };
  return { ok: true, value: { change, key } };
}

/** Removing a key drops it from the KV account record before D1 forgets it. */
export async function planRemoveKey(ctx: Ctx, accountId: string, keyId: string): Promise<Outcome<{ change: Change }>> {
  const state = await loadAccountState(ctx, accountId);
  if (!state) return accountNotFound();
  const key = state.keys.find((k) => k.id === keyId);
  if (!key) return fail("not_found", "Public key not found");
  const change: Change = {
    kvBefore: [accountRecordOp({ ...state, keys: state.keys.filter((k) => k.id !== keyId) })],
    d1: [
      statement(ctx.db.delete(publicKeys).where(eq(publicKeys.id, keyId))),
      audited(ctx, { action: "public_key.deleted", orgId: key.orgId, targetType: "public_key", targetId: key.id, details: { accountId, kid: key.kid } }),
    ],
    kvAfter: [],
  };
  return { ok: true, value: { change } };
}

/**
 * Disables a key (dropped from the KV record before D1 records it) or enables it again (KV after
 * D1). Idempotent: a key already in that status yields no change and no audit event. An expired
 * key (marked, or past its expiresAt) stays dead.
 */
export async function planSetKeyStatus(ctx: Ctx, accountId: string, keyId: string, status: "active" | "disabled"): Promise<Outcome<{ change: Change | null; key: PublicKey }>> {
  const state = await loadAccountState(ctx, accountId);
  if (!state) return accountNotFound();
  const key = state.keys.find((k) => k.id === keyId);
  if (!key) return fail("not_found", "Public key not found");
  const now = ctx.now();
  if (key.status === "expired" || (key.expiresAt !== null && key.expiresAt <= now)) {
    if (status === "active") return fail("key_expired", "The key has expired; register a new one");
    if (key.status === "expired") return { ok: true, value: { change: null, key } };
  }
  if (key.status === status) return { ok: true, value: { change: null, key } };
  const next: PublicKey = { ...key, status, updatedAt: now };
  const record = accountRecordOp({ ...state, keys: state.keys.map((k) => (k.id === keyId ? next : k)) });
  const change: Change = {
    kvBefore: status === "disabled" ? [record] : [],
    d1: [
      statement(ctx.db.update(publicKeys).set({ status, updatedAt: now }).where(and(eq(publicKeys.id, keyId), eq(publicKeys.status, key.status)))),
      audited(ctx, {
        action: status === "disabled" ? "public_key.disabled" : "public_key.enabled",
        orgId: key.orgId,
        targetType: "public_key",
        targetId: key.id,
        details: { accountId, kid: key.kid, fingerprint: key.fingerprint },
      }),
    ],
    kvAfter: status === "active" ? [record] : [],
  };
  return { ok: true, value: { change, key: next } };
}

/** Marks the account's active keys past their expiresAt `expired` (the cron), dropping them from KV first. */
export async function planExpireKeys(ctx: Ctx, accountId: string): Promise<Outcome<{ change: Change | null; expired: number }>> {
  const state = await loadAccountState(ctx, accountId);
  if (!state) return { ok: true, value: { change: null, expired: 0 } };
  const now = ctx.now();
  const due = state.keys.filter((k) => k.status === "active" && k.expiresAt !== null && k.expiresAt <= now);
  if (due.length === 0) return { ok: true, value: { change: null, expired: 0 } };
  const dueIds = new Set(due.map((k) => k.id));
  const change: Change = {
    kvBefore: [accountRecordOp({ ...state, keys: state.keys.map((k) => (dueIds.has(k.id) ? { ...k, status: "expired" as const } : k)) })],
    d1: due.flatMap((k) => [
      statement(ctx.db.update(publicKeys).set({ status: "expired", updatedAt: now }).where(and(eq(publicKeys.id, k.id), eq(publicKeys.status, "active")))),
      audited(ctx, {
        action: "public_key.expired",
        orgId: k.orgId,
        targetType: "public_key",
        targetId: k.id,
        details: { accountId, kid: k.kid, fingerprint: k.fingerprint, expiresAt: k.expiresAt },
      }),
    ]),
    kvAfter: [],
  };
  return { ok: true, value: { change, expired: due.length } };
}

/** Revokes every live token of an account (the cron's answer to an account past its validity). */
export async function planRevokeAll(ctx: Ctx, accountId: string, reason: string): Promise<Outcome<{ change: Change | null; revoked: number }>> {
  const state = await loadAccountState(ctx, accountId);
  if (!state) return accountNotFound();
  const tokens = await liveTokens(ctx, accountId);
  if (tokens.length === 0) return { ok: true, value: { change: null, revoked: 0 } };
  const now = ctx.now();
  const change: Change = {
    kvBefore: [...tokens.flatMap(revokeOps), ...revocationMarkerOps(ctx, tokens)],
    d1: tokens.flatMap((t) => [
      statement(
        ctx.db
          .update(accessTokens)
          .set({ status: "revoked", revokedAt: now, revokedBy: ctx.meta.actorId, previousSecretHash: null, previousSecretExpiresAt: null })
          .where(and(eq(accessTokens.id, t.id), eq(accessTokens.status, "active"))),
      ),
      audited(ctx, { action: "access_token.revoked", orgId: t.orgId, targetType: "access_token", targetId: t.id, details: { accountId, hint: t.hint, reason } }),
    ]),
    kvAfter: [],
  };
  return { ok: true, value: { change, revoked: tokens.length } };
}

/** Deleting an account kills every secret and key in KV first, then removes the account and its credentials in one batch. */
export async function planDeleteAccount(ctx: Ctx, accountId: string): Promise<Outcome<{ change: Change; account: ServiceAccount; revoked: number }>> {
  const state = await loadAccountState(ctx, accountId);
  if (!state) return accountNotFound();
  const { account } = state;
  const tokens = await ctx.db.select().from(accessTokens).where(eq(accessTokens.accountId, accountId));
  const active = tokens.filter((t) => t.status === "active");
  const revoked = active.length;
  const change: Change = {
    kvBefore: [{ op: "delete", key: accountKey(accountId) }, ...tokens.flatMap(revokeOps), ...revocationMarkerOps(ctx, active)],
    d1: [
      statement(ctx.db.delete(accessTokens).where(eq(accessTokens.accountId, accountId))),
      statement(ctx.db.delete(publicKeys).where(eq(publicKeys.accountId, accountId))),
      statement(ctx.db.delete(federatedCredentials).where(eq(federatedCredentials.serviceAccountId, accountId))),
      statement(ctx.db.delete(roleAssignments).where(eq(roleAssignments.accountId, accountId))),
      statement(ctx.db.delete(invitations).where(eq(invitations.accountId, accountId))),
      statement(ctx.db.delete(serviceAccounts).where(eq(serviceAccounts.id, accountId))),
      audited(ctx, {
        action: "service_account.deleted",
        orgId: account.orgId,
        targetType: "service_account",
        targetId: accountId,
        details: { name: account.name, email: account.email, revokedTokens: revoked },
      }),
    ],
    kvAfter: [],
  };
  return { ok: true, value: { change, account, revoked } };
}
