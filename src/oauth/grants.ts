import type { Ctx } from "../domain/shared/context.ts";
import type { IssuedJwt } from "../domain/issuance/exchange.ts";
import { exchangeLimits, jwtLifetime } from "../domain/signing/lifetime.ts";
import { DomainError } from "../domain/shared/errors.ts";
import type { AuthenticatedClient } from "./client-auth.ts";
import { OAuthError } from "./errors.ts";
import type { FormOf, FormSpec } from "./form.ts";
import type { VerifiedProof } from "../domain/credentials/dpop.ts";

/**
 * What a grant of the token endpoint is. Each grant is a module of src/oauth/grants/ exporting one
 * `Grant`; the registry (src/oauth/grants/index.ts) keys them by `grant_type`, and the token
 * endpoint's dispatch, its form, its responses and the RFC 8414 metadata all read it. Adding a
 * grant is one module and one registry line.
 */

export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
export const JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt";
export const ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token";
export const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/** The parameters every grant takes besides client authentication's: RFC 6749 3.3 scope, RFC 8707 resource, and audience. */
export const COMMON_GRANT_PARAMS = { grant_type: "one", scope: "one", resource: "many", audience: "many" } as const;

export interface GrantRequest<P extends FormSpec> {
  form: FormOf<typeof COMMON_GRANT_PARAMS & P>;
  /** The authenticated client; null only for a grant that takes none and was presented none. */
  client: AuthenticatedClient | null;
  /** The audiences asked for (RFC 8707 `resource` and `audience` together). */
  audiences: string[];
  /** The request's verified DPoP proof (RFC 9449): the JWT is bound to its key. */
  proof: VerifiedProof | null;
}

export interface Grant<P extends FormSpec = FormSpec> {
  grantType: string;
  /** The form parameters the grant takes, beyond COMMON_GRANT_PARAMS and client authentication's. */
  params: P;
  /**
   * `required`: the client must authenticate (RFC 6749 4.4.2). `when-presented`: the grant's own
   * credential suffices, and client credentials that are sent are verified (RFC 6749 2.3).
   */
  clientAuthentication: "required" | "when-presented";
  /** The `issued_token_type` of the response, for grants that answer with one (RFC 8693 2.2.1). */
  issuedTokenType?: string;
  handle(ctx: Ctx, request: GrantRequest<P>): Promise<IssuedJwt>;
}

/** A grant, typed by its parameters. */
export const defineGrant = <P extends FormSpec>(grant: Grant<P>): Grant<P> => grant;

/**
 * The lifetime of a JWT from /oauth/token: DEFAULT_JWT_TTL_SECONDS, clipped (never refused: the
 * client asked for no lifetime and reads `expires_in`) to MAX_JWT_TTL_SECONDS and to what its
 * source credential has left; invalid_grant once the source has expired.
 */
export function grantLifetime(ctx: Ctx, source: { name: string; expiresAt: number | null }): number {
  try {
    return jwtLifetime({ mode: "clip", limits: exchangeLimits(ctx.config), source, now: ctx.now() });
  } catch (err) {
    if (err instanceof DomainError) throw new OAuthError("invalid_grant", err.detail);
    throw err;
  }
}
