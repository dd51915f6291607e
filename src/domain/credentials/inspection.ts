import { DomainError } from "../shared/errors.ts";
import { accountObject } from "./account-object.ts";
import { auditInsert } from "../audit/audit-log.ts";
import type { Ctx } from "../shared/context.ts";
import { resolveCredential, type CredentialQuery, type ResolvedCredential } from "./resolver.ts";
import { revokeJti } from "../signing/jwt.ts";
import type { AccountClaims } from "./kv-records.ts";
import { customClaimsOfJwt } from "../signing/custom-claims.ts";

/**
 * What an authenticated OAuth client may learn about, and do to, a token it presents:
 * introspection (RFC 7662) and revocation (RFC 7009). The token is resolved for inspection by the
 * credential resolver; the client's own account decides what it may see.
 */

const isPlatformRootAccount = (account: AccountClaims) => account.platformPermissions.includes("platform.root");

/**
 * Whether `client` may introspect `token` (RFC 7662 4: the server decides whom it answers): a
 * token of the client's own account, of an account of the client's org, or a JWT issued for the
 * client's org (cross-org authorization); anything for the platform root. Everyone else gets
 * `{active: false}`, as for a token that does not exist.
 */
export function mayIntrospect(client: AccountClaims, token: ResolvedCredential): boolean {
  if (isPlatformRootAccount(client) || token.account.accountId === client.accountId) return true;
  if (client.orgId === null) return false;
  return token.account.orgId === client.orgId || token.orgLimit === client.orgId;
}

export type Introspection = { active: false } | ({ active: true } & Record<string, unknown>);

/**
 * RFC 7662 2.2: the answer about a token, exactly `{active: false}` for anything dead, unknown or
 * not the client's to see. The org's custom claims come first (their names are never one of the
 * members written after them): a JWT's own, an access token's those its JWTs would carry.
 */
export function introspection(ctx: Ctx, client: AccountClaims, token: ResolvedCredential | null): Introspection {
  // A token that used up its uses is as dead as a revoked one.
  if (!token || !mayIntrospect(client, token) || token.usesLeft === 0) return { active: false };
  if (token.kind === "access_token") {
    const { account, expiresAt } = token;
    return {
      ...account.customClaims,
      active: true,
      token_type: "access_token",
      client_id: account.accountId,
      sub: account.accountId,
      scope: account.scopes.join(" "),
      iss: ctx.config.ISSUER,
      ...(expiresAt !== null ? { exp: Math.floor(expiresAt / 1000) } : {}),
      ...(account.orgId ? { org_id: account.orgId } : {}),
    };
  }
  const jwt = token.jwt!;
  const { sub, client_id, scope, exp, iat, iss, aud, jti, org_id, act } = jwt;
  return {
    ...customClaimsOfJwt(jwt),
    active: true,
    // RFC 9449 6.2: a bound token's introspection says so (`cnf.jkt`); RFC 8693 4.1: and who acts (`act`).
    token_type: token.jkt !== undefined ? "DPoP" : "Bearer",
    sub,
    client_id,
    scope,
    exp,
    iat,
    iss,
    aud,
    jti,
    ...(org_id ? { org_id } : {}),
    ...(token.jkt !== undefined ? { cnf: { jkt: token.jkt } } : {}),
    ...(act ? { act } : {}),
  };
}

/**
 * RFC 7009: revokes a token the client presents. A client may revoke its own account's tokens (the
 * platform root anyone's): an access token through its account's Durable Object (which also kills
 * the JWTs minted from it), a JWT by putting its jti on the revocation list (which also kills the
 * JWTs exchanged from it). An unknown or dead token is no error (RFC 7009 2.2).
 */
export async function revokeInspected(ctx: Ctx, client: AccountClaims, token: ResolvedCredential | null, reason?: string): Promise<void> {
  if (!token) return;
  if (token.account.accountId !== client.accountId && !isPlatformRootAccount(client)) {
    throw new DomainError("permission_denied", "A client may revoke only its own tokens");
  }
  const accountId = token.account.accountId;
  if (token.kind === "access_token") {
    await accountObject(ctx, accountId).revokeToken(accountId, token.id, ctx.meta, reason);
    return;
  }
  const jwt = token.jwt!;
  await revokeJti(ctx, jwt.jti, jwt.exp);
  await auditInsert(ctx, { action: "jwt.revoked", orgId: jwt.org_id ?? null, targetType: "jwt", targetId: jwt.jti, details: { accountId, exp: jwt.exp, ...(reason ? { reason } : {}) } });
}

/** A token presented by a third party or by itself: an access token or any of our JWTs, whatever its audience. */
export const INSPECTED: CredentialQuery = { purpose: "inspect", accessToken: true, jwtAudience: null };

/**
 * Self-revocation: the holder of a credential revokes that credential, authenticated by nothing
 * but the credential itself (DELETE /api/v1/tokens/current, RFC 7009 without client
 * authentication). The credential is its own client, so the one revocation path applies as is;
 * `clientId`, when the request names one, must be the credential's account. Nothing happens for a
 * credential that is dead or unknown.
 */
export async function revokeSelf(ctx: Ctx, presented: string, clientId?: string): Promise<void> {
  const token = await resolveCredential(ctx, presented, INSPECTED);
  if (!token || (clientId !== undefined && clientId !== token.account.accountId)) return;
  const holder = token.account.accountId;
  await revokeInspected({ ...ctx, meta: { ...ctx.meta, actorId: holder } }, token.account, token, "self");
}
