import { auditFederated } from "../../domain/credentials/federated-tokens.ts";
import { resolveCredential, type ResolvedCredential } from "../../domain/credentials/resolver.ts";
import { grantScope, issueJwtFor, resolveAudience, type IssuedJwt } from "../../domain/issuance/exchange.ts";
import type { Ctx } from "../../domain/shared/context.ts";
import { OAuthError } from "../errors.ts";
import { defineGrant, grantLifetime, JWT_BEARER_GRANT } from "../grants.ts";

/** The one description of every refused external token: the reason goes to the audit log only. */
export const refusedExternalToken = () => new OAuthError("invalid_grant", "The token was not accepted by any trust policy");

/**
 * The external token of a federated grant (jwt-bearer's assertion, or token exchange's subject
 * token), resolved for the account `accountId` names if one is named.
 */
export async function resolveExternalToken(ctx: Ctx, token: string, accountId: string | undefined): Promise<ResolvedCredential> {
  const subject = await resolveCredential(ctx, token, { purpose: "exchange", accessToken: false, jwtAudience: false, federated: true, accountId });
  if (!subject?.federated) throw refusedExternalToken();
  return subject;
}

/**
 * A Keyward JWT for an accepted external token, by the rules of client_credentials: the account's
 * scopes, the allowed audiences, the default lifetime clipped to what the external token has left;
 * it carries `federated: {iss, sub, policy_id}`, and its issue is audited (credential.federated).
 */
export async function issueForExternalToken(ctx: Ctx, subject: ResolvedCredential, request: { scope: string | undefined; audiences: string[]; jkt: string | undefined }): Promise<IssuedJwt> {
  const match = subject.federated!;
  const issued = await issueJwtFor(ctx, subject.account, {
    scope: grantScope(request.scope, subject.account.scopes),
    audience: resolveAudience(ctx, request.audiences),
    ttlSeconds: grantLifetime(ctx, { name: "the external token", expiresAt: subject.expiresAt }),
    source: subject.derivedSource!,
    federated: { iss: match.claims.iss, sub: match.sub, policy_id: match.policy.id },
    jkt: request.jkt,
  });
  auditFederated(ctx, match, issued.jti);
  return issued;
}

/**
 * RFC 7523 2.1: an external JWT (`assertion`) that a trust policy accepts, for a Keyward JWT of
 * the policy's account. Client authentication is not required (the assertion is the credential);
 * `client_id` names the account when policies of several accounts take the token, and a client
 * that does authenticate must be that account.
 */
export const jwtBearerGrant = defineGrant({
  grantType: JWT_BEARER_GRANT,
  params: { assertion: "one", client_id: "one" } as const,
  clientAuthentication: "when-presented",
  async handle(ctx, { form, client, audiences, proof }) {
    if (!form.assertion) throw new OAuthError("invalid_request", "assertion is required");
    const subject = await resolveExternalToken(ctx, form.assertion, client?.clientId ?? form.client_id);
    return issueForExternalToken(ctx, subject, { scope: form.scope, audiences, jkt: proof?.jkt });
  },
});
