import { claimsFor } from "../../domain/issuance/cross-org.ts";
import { grantScope, issueJwtFor, resolveAudience } from "../../domain/issuance/exchange.ts";
import type { AccountClaims } from "../../domain/credentials/kv-records.ts";
import { OAuthError } from "../errors.ts";
import { defineGrant, grantLifetime } from "../grants.ts";

/**
 * RFC 6749 4.4 client_credentials: the authenticated client gets a JWT for itself, in its own org
 * or in one named by `org` (where an accepted invitation gave it a role).
 */
export const clientCredentialsGrant = defineGrant({
  grantType: "client_credentials",
  params: { org: "one" } as const,
  clientAuthentication: "required",
  async handle(ctx, { form, client, audiences, proof }) {
    const authenticated = client!;
    let account: AccountClaims;
    try {
      account = await claimsFor(ctx, authenticated.account, form.org);
    } catch (err) {
      throw new OAuthError("invalid_target", err instanceof Error ? err.message : "No role in that org");
    }
    return issueJwtFor(ctx, account, {
      scope: grantScope(form.scope, account.scopes),
      audience: resolveAudience(ctx, audiences),
      ttlSeconds: grantLifetime(ctx, { name: "the client's credential", expiresAt: authenticated.expiresAt }),
      source: authenticated.source,
      exchangedTokenId: authenticated.tokenId,
      jkt: proof?.jkt,
    });
  },
});
