import { ApiError } from "../errors.ts";
import { andThen, type MaybePromise } from "../lib/maybe-promise.ts";
import { isUnauthenticated, unauthenticated, verifyAccessToken } from "./authn.ts";
import { failureKeys, guarded } from "./rate-limit.ts";
import type { Ctx } from "./context.ts";
import { claimsFor } from "./authorize.ts";
import { mintJwt } from "./jwt.ts";
import { networkAllowed } from "./network.ts";
import { recordUse } from "./usage.ts";
import { credentialExpiry, type AccountClaims } from "./kv-records.ts";

/**
 * Turning credentials into short-lived JWTs: the rules shared by the token exchange endpoint and
 * every grant of /oauth/token. Nothing here reads D1 or calls a Durable Object.
 */

/** The granted scope: what was asked (space separated) if all of it is allowed; everything allowed if nothing was asked. */
export function grantScope(requested: string | undefined, allowed: string[]): string[] {
  const asked = (requested ?? "").split(" ").filter(Boolean);
  if (asked.length === 0) return allowed;
  const allowedSet = new Set(allowed);
  const unknown = asked.filter((s) => !allowedSet.has(s));
  if (unknown.length > 0) throw new ApiError("invalid_scope", `Not within what this account may request: ${unknown.join(" ")}`);
  return [...new Set(asked)];
}

/** The `aud` of a JWT: the issuer by default, or requested values from ALLOWED_AUDIENCES. */
export function resolveAudience(ctx: Ctx, requested: string[]): string | string[] {
  if (requested.length === 0) return ctx.config.ISSUER;
  const allowed = new Set([ctx.config.ISSUER, ...ctx.config.ALLOWED_AUDIENCES]);
  const bad = requested.filter((a) => !allowed.has(a));
  if (bad.length > 0) throw new ApiError("invalid_target", `Audience not allowed: ${bad.join(" ")}`);
  return requested.length === 1 ? requested[0]! : requested;
}

/** Seconds a credential has left, or Infinity when it does not expire. */
export function remainingSeconds(expiresAt: number | null, now: number): number {
  return expiresAt === null ? Infinity : Math.floor((expiresAt - now) / 1000);
}

/**
 * A JWT's lifetime: the requested duration (default from config), rejected (never clipped) when
 * over the configured maximum or over what the credential has left.
 */
export function exchangeDuration(ctx: Ctx, requested: number | undefined, credentialExpiresAt: number | null): number {
  const duration = requested ?? ctx.config.DEFAULT_JWT_TTL_SECONDS;
  if (duration > ctx.config.MAX_JWT_TTL_SECONDS) {
    throw new ApiError("invalid_duration", `duration_seconds may be at most ${ctx.config.MAX_JWT_TTL_SECONDS}`);
  }
  const left = remainingSeconds(credentialExpiresAt, ctx.now());
  if (duration > left) {
    throw new ApiError("invalid_duration", `The access token has ${left} s left; ask for at most that`);
  }
  return duration;
}

export interface IssuedJwt {
  /** The JWT as ASCII bytes (`framed` writes it into a response body as it is). */
  jws: Uint8Array;
  expiresIn: number;
  scope: string[];
}

/** Mints the JWT and counts the exchange (with the access token used, if any) for review. */
export function issueJwtFor(
  ctx: Ctx,
  account: AccountClaims,
  input: { scope: string[]; audience: string | string[]; ttlSeconds: number; tokenId?: string | undefined },
): Promise<IssuedJwt> {
  return mintJwt(ctx, { account, scope: input.scope, audience: input.audience, ttlSeconds: input.ttlSeconds }).then(({ jws }) => {
    recordUse(ctx, { accountId: account.accountId, tokenId: input.tokenId, exchange: true });
    return { jws, expiresIn: input.ttlSeconds, scope: input.scope };
  });
}

/** `POST /api/auth/access-tokens/jwt`: an access token for a JWT (the Witboost semantics). */
export function exchangeAccessToken(
  ctx: Ctx,
  input: { accessToken: string; durationSeconds?: number | undefined; scope?: string | undefined; org?: string | undefined },
): MaybePromise<IssuedJwt> {
  const found = guarded(ctx, () => failureKeys(ctx), isUnauthenticated, () =>
    andThen(verifyAccessToken(ctx.env, input.accessToken, ctx.now()), (record) => {
      if (!record || !networkAllowed(ctx, record.account)) throw unauthenticated("The access token is invalid, expired or revoked");
      return record;
    }),
  );
  return andThen(found, (record) => {
    const ttlSeconds = exchangeDuration(ctx, input.durationSeconds, credentialExpiry(record));
    return andThen(claimsFor(ctx, record.account, input.org), (account) =>
      issueJwtFor(ctx, account, { scope: grantScope(input.scope, account.scopes), audience: ctx.config.ISSUER, ttlSeconds, tokenId: record.tokenId }),
    );
  });
}
