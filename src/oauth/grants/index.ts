import { CLIENT_FIELDS, type FormSpec } from "../form.ts";
import { COMMON_GRANT_PARAMS, type Grant } from "../grants.ts";
import { OAuthError } from "../errors.ts";
import { clientCredentialsGrant } from "./client-credentials.ts";
import { jwtBearerGrant } from "./jwt-bearer.ts";
import { tokenExchangeGrant } from "./token-exchange.ts";

/** The grants of the token endpoint, keyed by grant_type (one line per grant). */
const GRANTS = new Map<string, Grant>(
  ([clientCredentialsGrant, tokenExchangeGrant, jwtBearerGrant] as Grant[]).map((grant) => [grant.grantType, grant]),
);

/** Every grant_type the token endpoint serves (RFC 8414 grant_types_supported). */
export const GRANT_TYPES: readonly string[] = [...GRANTS.keys()];

/** The token endpoint's form: the common parameters, client authentication's, and every grant's own. */
export const TOKEN_FORM: typeof COMMON_GRANT_PARAMS & typeof CLIENT_FIELDS & FormSpec = Object.assign(
  {},
  ...[...GRANTS.values()].map((g) => g.params),
  COMMON_GRANT_PARAMS,
  CLIENT_FIELDS,
);

/** The grant of a request's grant_type, or the RFC 6749 5.2 error. */
export function grantFor(grantType: string | undefined): Grant {
  if (grantType === undefined) throw new OAuthError("invalid_request", "grant_type is required");
  const grant = GRANTS.get(grantType);
  if (!grant) throw new OAuthError("unsupported_grant_type", `Supported grant types: ${GRANT_TYPES.join(", ")}`);
  return grant;
}
