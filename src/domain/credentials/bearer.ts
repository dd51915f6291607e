import { DomainError } from "../shared/errors.ts";
import type { Ctx } from "../shared/context.ts";
import { resolveCredential } from "./resolver.ts";
import type { Principal } from "../shared/principal.ts";
import { failureKeys, limitFailedAttempts } from "./failure-limits.ts";

// The record caches moved to credential-records.ts; re-exported for the tests that reach them here.
export { forgetCredentials, liveAccountRecord, TOKEN_CACHE_TTL_MS, verifyAccessToken } from "./record-cache.ts";

export const unauthenticated = (detail: string) =>
  new DomainError("unauthenticated", detail);

/** The credential of an `Authorization: Bearer` header, or a 401. */
export function bearerCredential(header: string | undefined): string {
  const match = /^Bearer[ ]+([\x21-\x7e]{1,8192})[ ]*$/i.exec(header ?? "");
  if (!match) throw unauthenticated("Send Authorization: Bearer <access token or JWT>");
  return match[1]!;
}

export const isUnauthenticated = (err: unknown) => err instanceof DomainError && err.code === "unauthenticated";

/**
 * Authenticates a bearer credential of the management API (an access token, or a JWT we issued
 * for our own audience) into a principal, or throws 401 (one message for every failure). Failures
 * count under the management API's own limits.
 */
export function authenticate(ctx: Ctx, header: string | undefined): Promise<Principal> {
  return limitFailedAttempts(ctx, () => failureKeys(ctx, null, "api"), isUnauthenticated, () => authenticateOnce(ctx, header));
}

async function authenticateOnce(ctx: Ctx, header: string | undefined): Promise<Principal> {
  const presented = bearerCredential(header);
  const credential = await resolveCredential(ctx, presented, { purpose: "act", accessToken: true, jwtAudience: ctx.config.ISSUER });
  if (!credential) throw unauthenticated("The credential is invalid, expired or revoked");
  return {
    accountId: credential.account.accountId,
    orgId: credential.account.orgId,
    platformPermissions: credential.account.platformPermissions,
    credential: credential.kind === "access_token" ? { type: "access_token", tokenId: credential.id } : { type: "jwt", jti: credential.id },
    scopeLimit: credential.scopeLimit,
    orgLimit: credential.orgLimit,
    expiresAt: credential.expiresAt,
    source: credential.derivedSource,
  };
}
