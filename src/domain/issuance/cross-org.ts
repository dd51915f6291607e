import { DomainError } from "../shared/errors.ts";
import type { MaybePromise } from "../../lib/maybe-promise.ts";
import { accountDeadReason, type AccountClaims } from "../credentials/kv-records.ts";
import { claimsOf, loadAccountState } from "../access/claims.ts";
import type { Ctx } from "../shared/context.ts";
import { mintJwt } from "../signing/jwt.ts";
import { authorizeLimits, jwtLifetime } from "../signing/lifetime.ts";
import { findOrg } from "../registry/orgs.ts";
import type { Principal } from "../shared/principal.ts";

const noRole = () => new DomainError("permission_denied", "The account holds no accepted role in that org", { missing: ["a role in the org"] });

/**
 * The account's claims in another org (where an accepted invitation gave it a role), read from D1:
 * its roles there and the operations it may request there. 403 where it holds nothing.
 */
export async function claimsInOrg(ctx: Ctx, accountId: string, orgRef: string): Promise<AccountClaims> {
  const org = await findOrg(ctx, orgRef);
  const state = await loadAccountState(ctx, accountId);
  if (!org || !state || !state.assignments.some((a) => a.orgId === org.id)) throw noRole();
  const claims = claimsOf(state, org.id);
  if (accountDeadReason(claims, ctx.now()) !== null) throw noRole();
  return { ...claims, orgId: org.id };
}

/** The claims to put in a JWT for `orgRef` (the account's own, unless another org is named). */
export function claimsFor(ctx: Ctx, account: AccountClaims, orgRef: string | undefined): MaybePromise<AccountClaims> {
  // Synchronous for the account's own org, as nearly every exchange is: no promise per request.
  if (!orgRef || orgRef === account.orgId) return account;
  return claimsInNamedOrg(ctx, account, orgRef);
}

async function claimsInNamedOrg(ctx: Ctx, account: AccountClaims, orgRef: string): Promise<AccountClaims> {
  const org = await findOrg(ctx, orgRef);
  if (org && org.id === account.orgId) return account;
  const claims = await claimsInOrg(ctx, account.accountId, orgRef);
  // A token with its own scopes is narrowed by them in every org, not only in its home org.
  if (!account.tokenScopes) return claims;
  const own = new Set(account.tokenScopes);
  return { ...claims, scopes: claims.scopes.filter((s) => own.has(s)), tokenScopes: account.tokenScopes };
}

/** `POST /api/v1/auth/authorize`: a JWT for another org, valid a day by default, clipped to the caller's credential. */
export async function authorizeForOrg(ctx: Ctx, principal: Principal, orgRef: string) {
  if (principal.orgLimit) {
    const target = await findOrg(ctx, orgRef);
    if (target?.id !== principal.orgLimit) throw noRole();
  }
  const claims = await claimsInOrg(ctx, principal.accountId, orgRef);
  const scope = principal.scopeLimit ? claims.scopes.filter((s) => principal.scopeLimit!.includes(s)) : claims.scopes;
  const ttlSeconds = jwtLifetime({
    mode: "clip",
    limits: authorizeLimits(ctx.config),
    source: { name: "the credential", expiresAt: principal.expiresAt ?? null },
    now: ctx.now(),
  });
  // The new JWT dies with the caller's credential (and the JWTs it came from).
  if (!principal.source) throw new DomainError("bad_request", "This JWT was exchanged too many times to derive another: authorize with the access token");
  // A bound caller's JWT stays bound to its key (and a requireDpop account gets no unbound one).
  if (claims.requireDpop && principal.jkt === undefined) throw new DomainError("dpop_required", "This service account requires DPoP: authorize with a DPoP-bound JWT");
  const { jws, exp } = await mintJwt(ctx, { account: claims, scope, audience: ctx.config.ISSUER, ttlSeconds, source: principal.source, jkt: principal.jkt, act: principal.act });
  return { jwt: jws, orgId: claims.orgId!, expiresAt: exp * 1000, scope };
}
