import { DomainError } from "../shared/errors.ts";
import type { Ctx } from "../shared/context.ts";
import { resolveCredential, type ResolvedCredential } from "./resolver.ts";
import type { Principal } from "../shared/principal.ts";
import { failureKeys, limitFailedAttempts } from "./failure-limits.ts";
import { invalidProof, type ProofRequest } from "./dpop.ts";

/** A credential as presented in the Authorization header: its scheme, and the token. */
export interface PresentedCredential {
  scheme: "Bearer" | "DPoP";
  token: string;
}

/** The request's DPoP header (undefined: none) and what a proof must name of the request. */
export type RequestProof = Omit<ProofRequest, "accessToken"> & { header: string | undefined };

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
export function authenticate(ctx: Ctx, presented: PresentedCredential | null, proof: RequestProof): Promise<Principal> {
  return limitFailedAttempts(ctx, () => failureKeys(ctx, null, "api"), isUnauthenticated, () => authenticateOnce(ctx, presented, proof));
}

/**
 * A DPoP-bound JWT must come as `Authorization: DPoP` with a proof over it (the resolver checks
 * the proof); as Bearer it is refused (dpop_required). The DPoP scheme with an unbound token is
 * refused too: what it claims to prove binds nothing.
 */
async function authenticateOnce(ctx: Ctx, presented: PresentedCredential | null, proof: RequestProof): Promise<Principal> {
  if (presented === null) throw noBearerCredential();
  const possession = presented.scheme === "DPoP" ? { proof } : undefined;
  const credential = await resolveCredential(ctx, presented.token, { purpose: "act", accessToken: true, jwtAudience: ctx.config.ISSUER, possession });
  if (!credential) throw unauthenticated("The credential is invalid, expired or revoked");
  if (presented.scheme === "DPoP" && credential.jkt === undefined) throw invalidProof("the token is not DPoP-bound: send it as Authorization: Bearer");
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
    jkt: credential.jkt,
    act: credential.jwt?.act,
  };
}
