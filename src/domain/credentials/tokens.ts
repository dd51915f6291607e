import { and, eq, gt, isNotNull, isNull, lte, or, sql, type SQL } from "drizzle-orm";
import { accessTokens, type AccessToken, type Org, type OrgPolicy } from "../../db/schema.ts";
import { DomainError } from "../shared/errors.ts";
import { keyset, toPage, type PageQuery } from "../shared/pagination.ts";
import { accountObject, unwrap } from "./account-object.ts";
import { accountFor } from "../registry/accounts.ts";
import type { Ctx } from "../shared/context.ts";
import { orgFor, policyOf } from "../registry/orgs.ts";
import { withPermission } from "../access/permissions.ts";
import type { TokenRestrictions } from "./token-limits.ts";

const DAY_MS = 86_400_000;
export const MAX_GRACE_SECONDS = 86_400;

export type TokenView = "active" | "revoked" | "expired";

export function tokenStatus(token: AccessToken, now: number): TokenView {
  if (token.status === "active" && token.expiresAt !== null && token.expiresAt <= now) return "expired";
  return token.status;
}

export interface IssueTokenInput extends TokenRestrictions {
  name?: string | undefined;
  expiresAt?: string | undefined;
  expiresInSeconds?: number | undefined;
}

const isoOf = (ms: number) => new Date(ms).toISOString();

/**
 * The token's expiry from the request, within two limits: the org policy's maximum lifetime and the
 * account's own expiry. A request beyond either is a 400 naming the limit (never clipped); no
 * requested expiry gets the nearer of the two (or none when neither applies).
 */
export function tokenExpiry(input: IssueTokenInput, policy: OrgPolicy, now: number, accountExpiresAt: number | null = null): number | null {
  if (input.expiresAt !== undefined && input.expiresInSeconds !== undefined) {
    throw new DomainError("validation_failed", "Give expiresAt or expiresInSeconds, not both", {
      errors: [{ path: "body.expiresAt", message: "Mutually exclusive with expiresInSeconds" }],
    });
  }
  let expiresAt: number | null = null;
  if (input.expiresInSeconds !== undefined) expiresAt = now + input.expiresInSeconds * 1000;
  if (input.expiresAt !== undefined) {
    expiresAt = Date.parse(input.expiresAt);
    if (expiresAt <= now) {
      throw new DomainError("validation_failed", "expiresAt must be in the future", { errors: [{ path: "body.expiresAt", message: "In the past" }] });
    }
  }
  const maxDays = policy.maxTokenLifetimeDays;
  const policyCap = maxDays === null ? null : now + maxDays * DAY_MS;
  if (expiresAt !== null && policyCap !== null && expiresAt > policyCap) {
    throw new DomainError(
      "token_lifetime_exceeded",
      `The org's policy allows tokens of at most ${maxDays} days (until ${isoOf(policyCap)}); ask for that or less, or give no expiry to get the longest allowed`,
    );
  }
  // An account already past its validity is refused when the token is issued (account_not_active).
  const accountCap = accountExpiresAt !== null && accountExpiresAt > now ? accountExpiresAt : null;
  if (expiresAt !== null && accountCap !== null && expiresAt > accountCap) {
    throw new DomainError(
      "token_lifetime_exceeded",
      `The service account expires at ${isoOf(accountCap)}; ask for a token expiring then or sooner (or extend the account's validity first), or give no expiry to get the account's`,
    );
  }
  if (expiresAt !== null) return expiresAt;
  const caps = [policyCap, accountCap].filter((c): c is number => c !== null);
  return caps.length > 0 ? Math.min(...caps) : null;
}

/** Issues a token through the account's Durable Object, which applies the active-token limit atomically. */
export const issueToken = withPermission(
  "service-accounts.access-tokens.edit",
  async (gate, orgRef: string, accountId: string, input: IssueTokenInput) => {
    const { org, account } = await accountFor(gate, orgRef, accountId, "grants");
    return issueFor(gate.ctx, org, account.id, input, account.expiresAt);
  },
  { guard: "covers" },
);

/**
 * Issues a token for an account the caller was authorized for. `accountExpiresAt` is the account's
 * validity (the token never outlives it); platform accounts have none.
 */
export async function issueFor(ctx: Ctx, org: Org | null, accountId: string, input: IssueTokenInput, accountExpiresAt: number | null = null) {
  const policy = policyOf(org);
  const expiresAt = tokenExpiry(input, policy, ctx.now(), accountExpiresAt);
  const stub = accountObject(ctx, accountId);
  return unwrap(
    await stub.issueToken(
      {
        accountId,
        name: input.name ?? null,
        expiresAt,
        limit: policy.maxActiveTokensPerAccount,
        restrictions: { scopes: input.scopes, allowedCidrs: input.allowedCidrs, remainingUses: input.remainingUses, refill: input.refill },
      },
      ctx.meta,
    ),
  );
}

export interface TokenReview extends PageQuery {
  status?: TokenView | undefined;
  /** Live tokens that expire within this many days. */
  expiringWithinDays?: number | undefined;
  /** Tokens not used (or never used and created) for this many days. */
  unusedForDays?: number | undefined;
  /** Tokens that have never authenticated anything. */
  neverUsed?: boolean | undefined;
  /** Live tokens with a use limit near its end: at most 1 use, or at most 10 % of their uses, left. */
  nearExhaustion?: boolean | undefined;
}

/** Filters for credential review: what is about to expire, what nobody uses (candidates to rotate or revoke). */
export function reviewFilters(q: Omit<TokenReview, keyof PageQuery>, now: number): SQL | undefined {
  const t = accessTokens;
  const live = and(eq(t.status, "active"), or(isNull(t.expiresAt), gt(t.expiresAt, now)));
  return and(
    q.status === "active"
      ? live
      : q.status === "expired"
        ? or(eq(t.status, "expired"), and(eq(t.status, "active"), lte(t.expiresAt, now)))
        : q.status
          ? eq(t.status, q.status)
          : undefined,
    q.expiringWithinDays !== undefined ? and(live, lte(t.expiresAt, now + q.expiringWithinDays * DAY_MS)) : undefined,
    q.unusedForDays !== undefined ? lte(sql`coalesce(${t.lastUsedAt}, ${t.createdAt})`, now - q.unusedForDays * DAY_MS) : undefined,
    q.neverUsed ? isNull(t.lastUsedAt) : undefined,
    q.nearExhaustion
      ? and(
          live,
          isNotNull(t.remainingUses),
          or(lte(t.remainingUses, 1), lte(sql`${t.remainingUses} * 10`, t.maxUses)),
          // A refill that is due (applied lazily, at the next use) already gave the uses back.
          or(isNull(t.refillIntervalMs), gt(sql`${t.lastRefillAt} + ${t.refillIntervalMs}`, now)),
        )
      : undefined,
  );
}

async function tokenPage(ctx: Ctx, where: SQL, q: TokenReview) {
  const page = keyset(accessTokens, q.cursor);
  const rows = await ctx.db
    .select()
    .from(accessTokens)
    .where(and(where, page.where, reviewFilters(q, ctx.now())))
    .orderBy(...page.orderBy)
    .limit(q.limit + 1);
  return toPage(rows, q.limit, (r) => r);
}

export const listTokens = withPermission("service-accounts.read", async (gate, orgRef: string, accountId: string, q: TokenReview) => {
  const { account } = await accountFor(gate, orgRef, accountId);
  return tokenPage(gate.ctx, eq(accessTokens.accountId, account.id), q);
});

/** Every token of the org matching the review filters (e.g. expiring within 7 days). */
export const listOrgTokens = withPermission("service-accounts.read", async (gate, orgRef: string, q: TokenReview) => {
  const org = await orgFor(gate, orgRef);
  return tokenPage(gate.ctx, eq(accessTokens.orgId, org.id), q);
});

/** Revoking takes access away: the guard lets the account itself, and incident response, do it. */
export const revokeToken = withPermission(
  "service-accounts.access-tokens.edit",
  async (gate, orgRef: string, accountId: string, tokenId: string) => {
    const { account } = await accountFor(gate, orgRef, accountId, "removes");
    return unwrap(await accountObject(gate.ctx, account.id).revokeToken(account.id, tokenId, gate.ctx.meta)).token;
  },
  { guard: "covers" },
);

/** A new secret, same expiry (so never past the account's): it hands a credential out, fully guarded. */
export const regenerateToken = withPermission(
  "service-accounts.access-tokens.edit",
  async (gate, orgRef: string, accountId: string, tokenId: string, graceSeconds: number) => {
    const { account } = await accountFor(gate, orgRef, accountId, "grants");
    return unwrap(await accountObject(gate.ctx, account.id).regenerateToken(account.id, tokenId, graceSeconds, gate.ctx.meta));
  },
  { guard: "covers" },
);
