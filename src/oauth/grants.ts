import { liveAccountRecord, verifyAccessToken } from "../domain/authn.ts";
import { claimsFor } from "../domain/authorize.ts";
import type { Ctx } from "../domain/context.ts";
import { grantScope, issueJwtFor, remainingSeconds, resolveAudience, type IssuedJwt } from "../domain/exchange.ts";
import { verifyJwt } from "../domain/jwt.ts";
import { networkAllowed } from "../domain/network.ts";
import { credentialExpiry, type AccountClaims } from "../domain/kv-records.ts";
import type { AuthenticatedClient } from "./client-auth.ts";
import { OAuthError } from "./errors.ts";

export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
export const JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt";

/** The lifetime of a JWT from a grant: the default, never past what the credential has left. */
function boundedTtl(ctx: Ctx, expiresAt: number | null): number {
  const ttl = Math.min(ctx.config.DEFAULT_JWT_TTL_SECONDS, remainingSeconds(expiresAt, ctx.now()));
  if (ttl < 1) throw new OAuthError("invalid_grant", "The credential has expired");
  return ttl;
}

/** client_credentials: the authenticated client gets a JWT for itself (in its own org, or one named by `org`). */
export function clientCredentials(ctx: Ctx, client: AuthenticatedClient, scope: string | undefined, audiences: string[], org?: string): Promise<IssuedJwt> {
  const issue = (account: AccountClaims) =>
    issueJwtFor(ctx, account, {
      scope: grantScope(scope, account.scopes),
      audience: resolveAudience(ctx, audiences),
      ttlSeconds: boundedTtl(ctx, client.expiresAt),
      tokenId: client.tokenId,
    });
  // Not async: for the account's own org the claims are at hand, and the JWT's promise is the answer.
  const claims = claimsFor(ctx, client.account, org);
  if (!(claims instanceof Promise)) return issue(claims);
  return claims.then(issue, (err: unknown) => {
    throw new OAuthError("invalid_target", err instanceof Error ? err.message : "No role in that org");
  });
}

export interface ExchangeForm {
  subject_token?: string | undefined;
  subject_token_type?: string | undefined;
  requested_token_type?: string | undefined;
  scope?: string | undefined;
}

/**
 * RFC 8693 token exchange with an access token or one of our JWTs as subject token. The new JWT
 * never has more scope or lifetime than the subject allows.
 */
export async function tokenExchange(ctx: Ctx, form: ExchangeForm, audiences: string[]): Promise<IssuedJwt> {
  const { subject_token: subject, subject_token_type: type } = form;
  if (!subject || !type) throw new OAuthError("invalid_request", "subject_token and subject_token_type are required");
  if (type !== ACCESS_TOKEN_TYPE && type !== JWT_TOKEN_TYPE) throw new OAuthError("invalid_request", "Unsupported subject_token_type");
  if (form.requested_token_type && form.requested_token_type !== ACCESS_TOKEN_TYPE && form.requested_token_type !== JWT_TOKEN_TYPE) {
    throw new OAuthError("invalid_request", "Only access tokens (JWTs) can be issued");
  }
  let account: AccountClaims;
  let allowed: string[];
  let expiresAt: number | null;
  const found = subject.startsWith("sat_") ? await verifyAccessToken(ctx.env, subject, ctx.now()) : null;
  const record = found && networkAllowed(ctx, found.account) ? found : null;
  if (found && !record) throw new OAuthError("invalid_grant", "The subject token is invalid, expired or revoked");
  if (record) {
    ({ account } = record);
    allowed = account.scopes;
    expiresAt = credentialExpiry(record);
  } else {
    // Only JWTs addressed to Keyward itself: one minted for a downstream audience must not be widened back.
    const jwt = subject.startsWith("sat_") ? null : await verifyJwt(ctx, subject, ctx.config.ISSUER);
    const live = jwt ? await liveAccountRecord(ctx.env, jwt.sub, ctx.now()) : null;
    if (!jwt || !live || !networkAllowed(ctx, live.account)) throw new OAuthError("invalid_grant", "The subject token is invalid, expired or revoked");
    // The new JWT is for the subject's org: a JWT for another org (POST /api/v1/auth/authorize)
    // must not come back as one for the account's home org, with its home roles.
    account = await Promise.resolve(claimsFor(ctx, live.account, jwt.org_id ?? undefined)).catch(() => {
      throw new OAuthError("invalid_grant", "The subject token's org no longer grants this account anything");
    });
    const held = new Set(account.scopes);
    allowed = (jwt.scope ?? "").split(" ").filter((s) => held.has(s));
    expiresAt = jwt.exp * 1000;
  }
  return issueJwtFor(ctx, account, {
    scope: grantScope(form.scope, allowed),
    audience: resolveAudience(ctx, audiences),
    ttlSeconds: boundedTtl(ctx, expiresAt),
  });
}
