import { claimsFor } from "../../domain/issuance/cross-org.ts";
import { resolveCredential } from "../../domain/credentials/resolver.ts";
import { grantScope, issueJwtFor, resolveAudience } from "../../domain/issuance/exchange.ts";
import { MAX_EXCHANGE_DEPTH } from "../../domain/signing/jwt.ts";
import type { AccountClaims } from "../../domain/credentials/kv-records.ts";
import { OAuthError } from "../errors.ts";
import { ACCESS_TOKEN_TYPE, defineGrant, grantLifetime, ID_TOKEN_TYPE, JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from "../grants.ts";
import { isForeignToken } from "../../domain/credentials/federated-tokens.ts";
import { issueForExternalToken, resolveExternalToken } from "./jwt-bearer.ts";

const invalidSubject = () => new OAuthError("invalid_grant", "The subject token is invalid, expired or revoked");

/**
 * RFC 8693 token exchange with an access token or one of our JWTs (addressed to Keyward itself)
 * as subject token, or an external OIDC token (`jwt` from another issuer, or `id_token`) that a
 * trust policy accepts, answered as the jwt-bearer grant answers it (`client_id` names the account). The new JWT never has more scope or lifetime than the subject allows, and
 * carries the subject's lineage: it dies with the subject, with every JWT the subject came from,
 * and with the access token at the root.
 *
 * Client authentication is not required: the subject token is itself the credential (the holder
 * of an access token may exchange it at the exchange endpoint without any other). Client
 * credentials that are sent are verified all the same (RFC 6749 2.3): a wrong secret is 401.
 */
export const tokenExchangeGrant = defineGrant({
  grantType: TOKEN_EXCHANGE_GRANT,
  params: { subject_token: "one", subject_token_type: "one", requested_token_type: "one", client_id: "one" } as const,
  clientAuthentication: "when-presented",
  issuedTokenType: ACCESS_TOKEN_TYPE,
  async handle(ctx, { form, client, audiences }) {
    const { subject_token: token, subject_token_type: type, requested_token_type: requested } = form;
    if (!token || !type) throw new OAuthError("invalid_request", "subject_token and subject_token_type are required");
    if (type !== ACCESS_TOKEN_TYPE && type !== JWT_TOKEN_TYPE && type !== ID_TOKEN_TYPE) throw new OAuthError("invalid_request", "Unsupported subject_token_type");
    if (requested && requested !== ACCESS_TOKEN_TYPE && requested !== JWT_TOKEN_TYPE) throw new OAuthError("invalid_request", "Only access tokens (JWTs) can be issued");
    if (type === ID_TOKEN_TYPE || (type === JWT_TOKEN_TYPE && isForeignToken(token, ctx.config.ISSUER))) {
      const external = await resolveExternalToken(ctx, token, client?.clientId ?? form.client_id);
      return issueForExternalToken(ctx, external, { scope: form.scope, audiences });
    }
    // Only JWTs addressed to Keyward itself: one minted for a downstream audience must not be widened back.
    const subject = await resolveCredential(ctx, token, { purpose: "exchange", accessToken: true, jwtAudience: ctx.config.ISSUER });
    if (!subject) throw invalidSubject();
    if (!subject.derivedSource) {
      throw new OAuthError("invalid_grant", `The subject token was itself exchanged ${MAX_EXCHANGE_DEPTH} times: exchange the access token it came from instead`);
    }
    let account: AccountClaims = subject.account;
    let allowed = account.scopes;
    if (subject.kind === "jwt") {
      // The new JWT is for the subject's org: a JWT for another org (POST /api/v1/auth/authorize)
      // must not come back as one for the account's home org, with its home roles.
      try {
        account = await claimsFor(ctx, subject.account, subject.orgLimit);
      } catch {
        throw new OAuthError("invalid_grant", "The subject token's org no longer grants this account anything");
      }
      const held = new Set(account.scopes);
      allowed = (subject.scopeLimit ?? []).filter((s) => held.has(s));
    }
    return issueJwtFor(ctx, account, {
      scope: grantScope(form.scope, allowed),
      audience: resolveAudience(ctx, audiences),
      ttlSeconds: grantLifetime(ctx, { name: "the subject token", expiresAt: subject.expiresAt }),
      source: subject.derivedSource,
      exchangedTokenId: subject.kind === "access_token" ? subject.id : undefined,
    });
  },
});
