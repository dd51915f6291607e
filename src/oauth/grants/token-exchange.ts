import { claimsFor } from "../../domain/issuance/cross-org.ts";
import { resolveCredential, type ResolvedCredential } from "../../domain/credentials/resolver.ts";
import { grantScope, issueJwtFor, resolveAudience } from "../../domain/issuance/exchange.ts";
import { delegation } from "../../domain/issuance/delegation.ts";
import { MAX_EXCHANGE_DEPTH } from "../../domain/signing/jwt.ts";
import type { AccountClaims } from "../../domain/credentials/kv-records.ts";
import type { Ctx } from "../../domain/shared/context.ts";
import { OAuthError } from "../errors.ts";
import { ACCESS_TOKEN_TYPE, defineGrant, grantLifetime, ID_TOKEN_TYPE, JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from "../grants.ts";
import { isForeignToken } from "../../domain/credentials/federated-tokens.ts";
import { issueForExternalToken, resolveExternalToken } from "./jwt-bearer.ts";

const invalidSubject = () => new OAuthError("invalid_grant", "The subject token is invalid, expired or revoked");

/**
 * One of our credentials presented to the exchange (the subject or the actor token): an access
 * token, or a JWT addressed to Keyward itself (one minted for a downstream audience must not be
 * widened back). A DPoP-bound JWT needs the request's proof to be of its key (docs/dpop.md).
 */
const resolveOwn = (ctx: Ctx, token: string, jkt: string | undefined): Promise<ResolvedCredential | null> =>
  resolveCredential(ctx, token, { purpose: "exchange", accessToken: true, jwtAudience: ctx.config.ISSUER, possession: { verifiedJkt: jkt ?? null } });

/**
 * RFC 8693 token exchange with an access token or one of our JWTs (addressed to Keyward itself)
 * as subject token, or an external OIDC token (`jwt` from another issuer, or `id_token`) that a
 * trust policy accepts, answered as the jwt-bearer grant answers it (`client_id` names the account). The new JWT never has more scope or lifetime than the subject allows, and
 * carries the subject's lineage: it dies with the subject, with every JWT the subject came from,
 * and with the access token at the root.
 *
 * With an `actor_token` (RFC 8693 delegation, src/domain/issuance/delegation.ts) the new JWT is
 * the subject's with an `act` claim naming the actor, and it dies with the actor's credential too.
 *
 * Client authentication is not required: the subject token is itself the credential (the holder
 * of an access token may exchange it at the exchange endpoint without any other). Client
 * credentials that are sent are verified all the same (RFC 6749 2.3): a wrong secret is 401.
 */
export const tokenExchangeGrant = defineGrant({
  grantType: TOKEN_EXCHANGE_GRANT,
  params: { subject_token: "one", subject_token_type: "one", requested_token_type: "one", client_id: "one", actor_token: "one", actor_token_type: "one" } as const,
  clientAuthentication: "when-presented",
  issuedTokenType: ACCESS_TOKEN_TYPE,
  async handle(ctx, { form, client, audiences, proof }) {
    const { subject_token: token, subject_token_type: type, requested_token_type: requested } = form;
    if (!token || !type) throw new OAuthError("invalid_request", "subject_token and subject_token_type are required");
    if (type !== ACCESS_TOKEN_TYPE && type !== JWT_TOKEN_TYPE && type !== ID_TOKEN_TYPE) throw new OAuthError("invalid_request", "Unsupported subject_token_type");
    if (requested && requested !== ACCESS_TOKEN_TYPE && requested !== JWT_TOKEN_TYPE) throw new OAuthError("invalid_request", "Only access tokens (JWTs) can be issued");
    if ((form.actor_token === undefined) !== (form.actor_token_type === undefined)) throw new OAuthError("invalid_request", "actor_token and actor_token_type go together");
    if (form.actor_token_type !== undefined && form.actor_token_type !== ACCESS_TOKEN_TYPE && form.actor_token_type !== JWT_TOKEN_TYPE) {
      throw new OAuthError("invalid_request", "Unsupported actor_token_type");
    }
    const jkt = proof?.jkt;
    if (type === ID_TOKEN_TYPE || (type === JWT_TOKEN_TYPE && isForeignToken(token, ctx.config.ISSUER))) {
      if (form.actor_token !== undefined) throw new OAuthError("invalid_request", "Delegation (actor_token) takes a Keyward subject token");
      const external = await resolveExternalToken(ctx, token, client?.clientId ?? form.client_id);
      return issueForExternalToken(ctx, external, { scope: form.scope, audiences, jkt });
    }
    const subject = await resolveOwn(ctx, token, jkt);
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
    let source = subject.derivedSource;
    let act = subject.jwt?.act;
    let expiresAt = subject.expiresAt;
    if (form.actor_token !== undefined) {
      const actor = await resolveOwn(ctx, form.actor_token, jkt);
      if (!actor) throw new OAuthError("invalid_grant", "The actor token is invalid, expired or revoked");
      const delegated = delegation(subject, actor, account);
      if ("refused" in delegated) throw new OAuthError("invalid_grant", delegated.refused);
      ({ source, act } = delegated);
      expiresAt = Math.min(expiresAt ?? Infinity, actor.expiresAt ?? Infinity);
    }
    return issueJwtFor(ctx, account, {
      scope: grantScope(form.scope, allowed),
      audience: resolveAudience(ctx, audiences),
      ttlSeconds: grantLifetime(ctx, { name: form.actor_token !== undefined ? "the subject or actor token" : "the subject token", expiresAt: expiresAt === Infinity ? null : expiresAt }),
      source,
      exchangedTokenId: subject.kind === "access_token" ? subject.id : undefined,
      jkt,
      act,
    });
  },
});
