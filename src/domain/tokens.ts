import { and, eq, gt, isNull, lte, or, sql, type SQL } from "drizzle-orm";
import { accessTokens, type AccessToken, type Org, type OrgPolicy } from "../db/schema.ts";
import { ApiError } from "../errors.ts";
import { keyset, toPage, type PageQuery } from "../lib/pagination.ts";
import { accountObject, unwrap } from "./account-do.ts";
import { accountFor } from "./accounts.ts";
import type { Ctx } from "./context.ts";
import { DEFAULT_POLICY, orgFor } from "./orgs.ts";
import type { Principal } from "./principal.ts";

const DAY_MS = 86_400_000;
export const MAX_GRACE_SECONDS = 86_400;

export type TokenView = "active" | "revoked" | "expired";

export function tokenStatus(token: AccessToken, now: number): TokenView {
  if (token.status === "active" && token.expiresAt !== null && token.expiresAt <= now) return "expired";
  return token.status;
}

export interface IssueTokenInput {
  name?: string | undefined;
  expiresAt?: string | undefined;
  expiresInSeconds?: number | undefined;
}

/** The token's expiry from the request, capped by the org policy (a longer request is a 400, never clipped). */
export function tokenExpiry(input: IssueTokenInput, policy: OrgPolicy, now: number): number | null {
  if (input.expiresAt !== undefined && input.expiresInSeconds !== undefined) {
    throw new ApiError("validation_failed", "Give expiresAt or expiresInSeconds, not both", {
      errors: [{ path: "body.expiresAt", message: "Mutually exclusive with expiresInSeconds" }],
    });
  }
  let expiresAt: number | null = null;
  if (input.expiresInSeconds !== undefined) expiresAt = now + input.expiresInSeconds * 1000;
  if (input.expiresAt !== undefined) {
    expiresAt = Date.parse(input.expiresAt);
    if (expiresAt <= now) {
      throw new ApiError("validation_failed", "expiresAt must be in the future", { errors: [{ path: "body.expiresAt", message: "In the past" }] });
    }
  }
  const maxDays = policy.maxTokenLifetimeDays;
  if (maxDays !== null) {
    const cap = now + maxDays * DAY_MS;
    if (expiresAt === null) return cap;
    if (expiresAt > cap) {
      throw new ApiError("token_lifetime_exceeded", `The org's policy allows tokens of at most ${maxDays} days`);
    }
  }
  return expiresAt;
}

export const policyOf = (org: Org | null): OrgPolicy => ({ ...DEFAULT_POLICY, ...org?.policy });

/** Issues a token through the account's Durable Object, which applies the active-token limit atomically. */
export async function issueToken(ctx: Ctx, principal: Principal, orgRef: string, accountId: string, input: IssueTokenInput) {
  const { org, account } = await accountFor(ctx, principal, orgRef, accountId, "service-accounts.access-tokens.edit", true);
  return issueFor(ctx, org, account.id, input);
}

export async function issueFor(ctx: Ctx, org: Org | null, accountId: string, input: IssueTokenInput) {
  const policy = policyOf(org);
  const expiresAt = tokenExpiry(input, policy, ctx.now());
  const stub = accountObject(ctx, accountId);
  return unwrap(
    await stub.issueToken({ accountId, name: input.name ?? null, expiresAt, limit: policy.maxActiveTokensPerAccount }, ctx.meta),
  );
}

export interface TokenReview extends PageQuery {
  status?: TokenView | undefined;
  /** Live tokens that expire within this many days. */
  expiringWithinDays?: number | undefined;
  /** Tokens not used (or never used and created) for this many days. */
  unusedForDays?: number | undefined;
}

/** Filters for credential review (the Whaly practice: review, rotate, least privilege). */
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

export async function listTokens(ctx: Ctx, principal: Principal, orgRef: string, accountId: string, q: TokenReview) {
  const { account } = await accountFor(ctx, principal, orgRef, accountId, "service-accounts.read");
  return tokenPage(ctx, eq(accessTokens.accountId, account.id), q);
}

/** Every token of the org matching the review filters (e.g. expiring within 7 days). */
export async function listOrgTokens(ctx: Ctx, principal: Principal, orgRef: string, q: TokenReview) {
  const org = await orgFor(ctx, principal, orgRef, "service-accounts.read");
  return tokenPage(ctx, eq(accessTokens.orgId, org.id), q);
}

export async function revokeToken(ctx: Ctx, principal: Principal, orgRef: string, accountId: string, tokenId: string) {
  const { account } = await accountFor(ctx, principal, orgRef, accountId, "service-accounts.access-tokens.edit");
  return unwrap(await accountObject(ctx, account.id).revokeToken(account.id, tokenId, ctx.meta)).token;
}

export async function regenerateToken(ctx: Ctx, principal: Principal, orgRef: string, accountId: string, tokenId: string, graceSeconds: number) {
  const { account } = await accountFor(ctx, principal, orgRef, accountId, "service-accounts.access-tokens.edit", true);
  return unwrap(await accountObject(ctx, account.id).regenerateToken(account.id, tokenId, graceSeconds, ctx.meta));
}
