import { DomainError } from "../shared/errors.ts";
import { isUnauthenticated, unauthenticated } from "../credentials/bearer.ts";
import { claimsFor } from "./cross-org.ts";
import type { Ctx } from "../shared/context.ts";
import { resolveCredential } from "../credentials/resolver.ts";
import { mintJwt, type ActClaim, type FederatedOrigin, type JwtSource } from "../signing/jwt.ts";
import type { AccountClaims } from "../credentials/kv-records.ts";
import { exchangeLimits, jwtLifetime } from "../signing/lifetime.ts";
import { failureKeys, limitFailedAttempts } from "../credentials/failure-limits.ts";
import { recordUse } from "../credentials/usage.ts";
import { takeJwtQuota } from "./jwt-quota.ts";

/**
 * Turning credentials into short-lived JWTs: the rules shared by the token exchange endpoint and
 * every grant of /oauth/token. Nothing here reads D1 or calls a Durable Object.
 */

/**
 * The granted scope: what was asked (space separated) if all of it is allowed; everything allowed
 * when `scope` is absent. A `scope` that is present but empty is refused: it would otherwise read
 * as "everything", the opposite of what an empty list says (RFC 6749 3.3 has no empty scope).
 */
export function grantScope(requested: string | undefined, allowed: string[]): string[] {
  if (requested === undefined) return allowed;
  const asked = requested.split(" ").filter(Boolean);
  if (asked.length === 0) throw new DomainError("invalid_scope", "scope is empty: omit scope to get every scope this account may request");
  const allowedSet = new Set(allowed);
  const unknown = asked.filter((s) => !allowedSet.has(s));
  if (unknown.length > 0) throw new DomainError("invalid_scope", `Not within what this account may request: ${unknown.join(" ")}`);
  return [...new Set(asked)];
}

/** The `aud` of a JWT: the issuer by default, or requested values from ALLOWED_AUDIENCES. */
export function resolveAudience(ctx: Ctx, requested: string[]): string | string[] {
  if (requested.length === 0) return ctx.config.ISSUER;
  const allowed = new Set([ctx.config.ISSUER, ...ctx.config.ALLOWED_AUDIENCES]);
  const bad = requested.filter((a) => !allowed.has(a));
  if (bad.length > 0) throw new DomainError("invalid_target", `Audience not allowed: ${bad.join(" ")}`);
  return requested.length === 1 ? requested[0]! : requested;
}

export interface IssuedJwt {
  /** The JWT, a compact JWS. */
  jws: string;
  jti: string;
  expiresIn: number;
  scope: string[];
}

export interface JwtToIssue {
  scope: string[];
  audience: string | string[];
  ttlSeconds: number;
  source: JwtSource;
  /** The access token exchanged for the JWT (resolved with purpose `exchange`), whose use is recorded with the exchange. */
  exchangedTokenId?: string | undefined;
  /** The external token a federated grant accepted. */
  federated?: FederatedOrigin | undefined;
  /** RFC 9449: the thumbprint of the proof key the JWT is bound to. */
  jkt?: string | undefined;
  /** RFC 8693 delegation: the actor chain. */
  act?: ActClaim | undefined;
}

/** Counts the JWT against the account's quota (429 over it), mints it, and records the exchange (and the access token exchanged, if one was) for review. */
export async function issueJwtFor(ctx: Ctx, account: AccountClaims, input: JwtToIssue): Promise<IssuedJwt> {
  // requireDpop: every JWT of the account is bound, whichever path issues it.
  if (account.requireDpop && input.jkt === undefined) {
    throw new DomainError("dpop_required", "This service account requires DPoP: send a DPoP proof to /oauth/token (docs/dpop.md)");
  }
  const quota = takeJwtQuota(ctx, account);
  if (quota) await quota;
  const { jws, jti } = await mintJwt(ctx, {
    account,
    scope: input.scope,
    audience: input.audience,
    ttlSeconds: input.ttlSeconds,
    source: input.source,
    federated: input.federated,
    jkt: input.jkt,
    act: input.act,
  });
  recordUse(ctx, { accountId: account.accountId, tokenId: input.exchangedTokenId, exchange: true });
  return { jws, jti, expiresIn: input.ttlSeconds, scope: input.scope };
}

/** `POST /api/auth/access-tokens/jwt`: an access token for a JWT, its lifetime rejected (never clipped) when over a bound. */
export async function exchangeAccessToken(
  ctx: Ctx,
  input: { accessToken: string; durationSeconds?: number | undefined; scope?: string | undefined; org?: string | undefined; jkt?: string | undefined },
): Promise<IssuedJwt> {
  const token = await limitFailedAttempts(ctx, () => failureKeys(ctx, null, "token"), isUnauthenticated, async () => {
    const found = await resolveCredential(ctx, input.accessToken, { purpose: "exchange", accessToken: true, jwtAudience: false });
    if (!found) throw unauthenticated("The access token is invalid, expired or revoked");
    return found;
  });
  const ttlSeconds = jwtLifetime({
    mode: "reject",
    limits: exchangeLimits(ctx.config),
    requested: input.durationSeconds,
    source: { name: "the access token", expiresAt: token.expiresAt },
    now: ctx.now(),
  });
  const account = await claimsFor(ctx, token.account, input.org);
  // An access token is the root of its lineage: its derived source is never at the chain's bound.
  return issueJwtFor(ctx, account, {
    scope: grantScope(input.scope, account.scopes),
    audience: ctx.config.ISSUER,
    ttlSeconds,
    source: token.derivedSource!,
    exchangedTokenId: token.id,
    jkt: input.jkt,
  });
}
