import { DomainError } from "../shared/errors.ts";
import type { Ctx } from "../shared/context.ts";
import { resolveCredential, type ResolvedCredential } from "./resolver.ts";
import type { Principal } from "../shared/principal.ts";
import { failureKeys, limitFailedAttempts } from "./failure-limits.ts";

export const unauthenticated = (detail: string) =>
  new DomainError("unauthenticated", detail);

/** What a request must present when it presented no bearer credential in the expected form. */
export const noBearerCredential = () => unauthenticated("Send Authorization: Bearer <access token or JWT>");

export const isUnauthenticated = (err: unknown) => err instanceof DomainError && err.code === "unauthenticated";

/**
 * Authenticates the bearer credential of a management API request (an access token, or a JWT we
 * issued for our own audience; null when none was presented in the bearer form) into a principal,
 * or throws unauthenticated (one message for every failure). Failures count under the management
 * API's own limits.
 */
export function authenticate(ctx: Ctx, presented: string | null): Promise<Principal> {
  return limitFailedAttempts(ctx, () => failureKeys(ctx, null, "api"), isUnauthenticated, () => authenticateOnce(ctx, presented));
}

async function authenticateOnce(ctx: Ctx, presented: string | null): Promise<Principal> {
  if (presented === null) throw noBearerCredential();
  const credential = await resolveCredential(ctx, presented, { purpose: "act", accessToken: true, jwtAudience: ctx.config.ISSUER });
  if (!credential) throw unauthenticated("The credential is invalid, expired or revoked");
  return principalOf(credential);
}

/** The principal a resolved credential acts as. */
export function principalOf(credential: ResolvedCredential): Principal {
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
