import { z, type OpenAPIHono } from "@hono/zod-openapi";
import { JWT_BEARER_ASSERTION } from "./client-auth.ts";
import { ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, JWT_BEARER_GRANT, JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from "./grants.ts";

/**
 * The OpenAPI description of the OAuth surface: the token endpoint (RFC 6749 client_credentials,
 * RFC 8693 token exchange and RFC 7523 jwt-bearer), introspection (RFC 7662), revocation (RFC 7009) and the discovery
 * documents (RFC 8414, RFC 7517). These routes are plain Hono routes with their own form parsing
 * and RFC 6749 errors, so they are registered here as documentation only, from zod schemas.
 */

type Registry = OpenAPIHono["openAPIRegistry"];

const FORM = "application/x-www-form-urlencoded";
const AUTH_METHODS = "client_secret_basic (HTTP Basic: client_id and the access token as secret), client_secret_post (client_id and client_secret in the form) or private_key_jwt (RFC 7523: client_assertion_type and client_assertion)";

/** Client authentication in the form (client_secret_post, private_key_jwt); Basic goes in the Authorization header. */
const clientAuthFields = {
  client_id: z.string().optional().openapi({ description: "client_secret_post: the client id (the service account id). Optional with private_key_jwt (the assertion names it), and with an external token (it names the account)", example: "sa_3bW1mYg0cFj7xQ2kV9rT4e" }),
  client_secret: z.string().optional().openapi({ description: "client_secret_post: the account's access token (sat_...)" }),
  client_assertion_type: z.literal(JWT_BEARER_ASSERTION).optional().openapi({ description: "private_key_jwt (RFC 7523 section 2.2)" }),
  client_assertion: z
    .string()
    .optional()
    .openapi({ description: "private_key_jwt: a JWT signed with a key registered on the account: iss = sub = client_id, aud = the issuer (or the token endpoint URL), exp within the maximum assertion lifetime, a jti used only once" }),
};

const tokenRequest = z
  .object({
    grant_type: z
      .enum(["client_credentials", TOKEN_EXCHANGE_GRANT, JWT_BEARER_GRANT])
      .openapi({ description: "client_credentials (RFC 6749 section 4.4), token-exchange (RFC 8693) or jwt-bearer (RFC 7523 section 2.1: an external OIDC token a trust policy accepts)" }),
    assertion: z
      .string()
      .optional()
      .openapi({ description: "jwt-bearer: the external OIDC token (a GitHub Actions ID token, a Kubernetes service-account token...) that a federated credential of the account accepts (docs/federation.md)" }),
    scope: z.string().optional().openapi({ description: "Space-separated scopes, within what the account may request (default: all of them)", example: "service-accounts.read" }),
    resource: z.string().optional().openapi({ description: "RFC 8707: the audience of the JWT (repeatable); must be in ALLOWED_AUDIENCES" }),
    audience: z.string().optional().openapi({ description: "RFC 8693: the same as resource (repeatable)" }),
    org: z.string().optional().openapi({ description: "client_credentials: another org where the account holds an accepted role (default: its own)" }),
    subject_token: z
      .string()
      .optional()
      .openapi({ description: "token-exchange: an access token (sat_...), a JWT Keyward issued for itself, or an external OIDC token that a federated credential accepts" }),
    subject_token_type: z
      .enum([ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, ID_TOKEN_TYPE])
      .optional()
      .openapi({ description: "token-exchange: the type of subject_token (an external token: jwt or id_token)" }),
    requested_token_type: z.enum([ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE]).optional().openapi({ description: "token-exchange: Keyward issues JWT access tokens only" }),
    actor_token: z
      .string()
      .optional()
      .openapi({ description: "token-exchange delegation (RFC 8693 section 4.1): an access token or Keyward JWT of an account of the same org; the JWT gets `act: {sub: <actor>}` (docs/dpop.md)" }),
    actor_token_type: z.enum([ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE]).optional().openapi({ description: "token-exchange: the type of actor_token (required with it)" }),
    ...clientAuthFields,
  })
  .openapi("OAuthTokenRequest");

const tokenResponse = z
  .object({
    access_token: z.string().openapi({ description: "A JWT (RFC 9068, typ at+jwt), verifiable with the JWKS" }),
    token_type: z.enum(["Bearer", "DPoP"]).openapi({ description: "DPoP when the request carried a DPoP proof: the JWT is bound to its key (cnf.jkt, RFC 9449)" }),
    expires_in: z.number().int().openapi({ description: "Seconds until the JWT expires", example: 300 }),
    scope: z.string().openapi({ example: "service-accounts.read" }),
    issued_token_type: z.literal(ACCESS_TOKEN_TYPE).optional().openapi({ description: "token-exchange only (RFC 8693 section 2.2.1)" }),
  })
  .openapi("OAuthTokenResponse");

const oauthError = z
  .object({
    error: z
      .enum(["invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type", "invalid_scope", "invalid_target", "slow_down", "temporarily_unavailable", "server_error", "invalid_dpop_proof", "use_dpop_nonce"])
      .openapi({ description: "RFC 6749 section 5.2 (RFC 8707 invalid_target, slow_down with a Retry-After when rate limited, RFC 9449 invalid_dpop_proof and use_dpop_nonce with a DPoP-Nonce header)" }),
    error_description: z.string().optional().openapi({ description: "Printable ASCII; for people, not for programs" }),
  })
  .openapi("OAuthError", { example: { error: "invalid_client", error_description: "Client authentication failed" } });

const oauthErrors = (statuses: Record<number, string>) =>
  Object.fromEntries(Object.entries(statuses).map(([status, description]) => [status, { description, content: { "application/json": { schema: oauthError } } }]));

const TOKEN_ERRORS = oauthErrors({
  400: "invalid_request, invalid_grant, invalid_scope, invalid_target, unsupported_grant_type (RFC 6749 section 5.2); invalid_dpop_proof, use_dpop_nonce (RFC 9449)",
  401: "invalid_client; with WWW-Authenticate: Basic when the client used the Authorization header",
  429: "slow_down: too many failed attempts; wait Retry-After seconds",
});

const tokenQuery = z
  .object({
    token: z.string().openapi({ description: "An access token (sat_...) or a JWT" }),
    token_type_hint: z.string().optional().openapi({ description: "access_token (accepted and not needed: the token's form tells its type)" }),
    ...clientAuthFields,
  })
  .openapi("OAuthTokenQuery");

const introspection = z
  .object({
    active: z.boolean(),
    token_type: z.string().optional(),
    client_id: z.string().optional(),
    sub: z.string().optional(),
    scope: z.string().optional(),
    exp: z.number().int().optional(),
    iat: z.number().int().optional(),
    iss: z.string().optional(),
    aud: z.union([z.string(), z.array(z.string())]).optional(),
    jti: z.string().optional(),
    org_id: z.string().optional(),
    cnf: z.object({ jkt: z.string() }).optional().openapi({ description: "RFC 9449: the thumbprint of the key a DPoP-bound JWT is bound to" }),
    act: z.object({ sub: z.string() }).passthrough().optional().openapi({ description: "RFC 8693 section 4.1: the actor (nested `act` for the actors before it)" }),
  })
  .catchall(z.string().openapi({ description: "The org's custom claims (policy.jwtClaims, docs/claims.md)" }))
  .openapi("IntrospectionResponse", { example: { active: true, token_type: "Bearer", sub: "sa_3bW1mYg0cFj7xQ2kV9rT4e", client_id: "sa_3bW1mYg0cFj7xQ2kV9rT4e", scope: "service-accounts.read", exp: 1893456000 } });

const stringList = z.array(z.string());
const serverMetadata = z
  .object({
    issuer: z.string(),
    token_endpoint: z.string(),
    jwks_uri: z.string(),
    introspection_endpoint: z.string(),
    revocation_endpoint: z.string(),
    grant_types_supported: stringList,
    response_types_supported: stringList.optional(),
    token_endpoint_auth_methods_supported: stringList,
    token_endpoint_auth_signing_alg_values_supported: stringList,
    introspection_endpoint_auth_methods_supported: stringList,
    revocation_endpoint_auth_methods_supported: stringList,
    scopes_supported: stringList,
    service_documentation: z.string().optional(),
  })
  .passthrough()
  .openapi("AuthorizationServerMetadata");

const jwks = z
  .object({
    keys: z.array(
      z
        .object({ kty: z.string(), kid: z.string(), alg: z.string(), use: z.string().optional(), crv: z.string().optional(), x: z.string().optional(), y: z.string().optional(), n: z.string().optional(), e: z.string().optional() })
        .passthrough(),
    ),
  })
  .openapi("JsonWebKeySet");

const CLIENT_CREDENTIALS_EXAMPLE = { grant_type: "client_credentials", scope: "service-accounts.read" };
const TOKEN_EXCHANGE_EXAMPLE = { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: "sat_<access token>", subject_token_type: ACCESS_TOKEN_TYPE, scope: "service-accounts.read" };
const JWT_BEARER_EXAMPLE = { grant_type: JWT_BEARER_GRANT, assertion: "<the external OIDC token>", client_id: "sa_3bW1mYg0cFj7xQ2kV9rT4e" };
const PRIVATE_KEY_JWT_EXAMPLE = { grant_type: "client_credentials", client_assertion_type: JWT_BEARER_ASSERTION, client_assertion: "<JWT signed with your registered key>" };

/** Basic in the Authorization header, or the form's own client authentication (no HTTP scheme). */
const CLIENT_AUTH: Record<string, string[]>[] = [{ clientSecretBasic: [] }, {}];

const tokenRoute = (path: string, summary: string) => ({
  method: "post" as const,
  path,
  tags: ["OAuth"],
  summary,
  description: [
    "A JWT access token by `client_credentials` (the client authenticates itself), by RFC 8693 token exchange (an access token or a Keyward JWT as `subject_token`), or for an external OIDC token that a federated credential accepts (RFC 7523 `jwt-bearer` with `assertion`, or token exchange with `subject_token_type` jwt or id_token; `client_id` optional, naming the account when policies of several accounts accept the token).",
    `Client authentication: ${AUTH_METHODS}. For the token exchange the subject token is the credential; client credentials, when presented, are verified.`,
    "A `DPoP` proof header (RFC 9449) binds the JWT to the proof's key (`cnf.jkt`, `token_type: DPoP`; docs/dpop.md).",
    "Responses are never cached (`Cache-Control: no-store`); errors are RFC 6749 JSON bodies, not problem+json.",
  ].join(" "),
  security: CLIENT_AUTH,
  request: {
    body: {
      required: true,
      content: {
        [FORM]: {
          schema: tokenRequest,
          examples: {
            client_credentials: { summary: "client_credentials (with client_secret_basic in the Authorization header)", value: CLIENT_CREDENTIALS_EXAMPLE },
            private_key_jwt: { summary: "client_credentials with private_key_jwt", value: PRIVATE_KEY_JWT_EXAMPLE },
            token_exchange: { summary: "RFC 8693 token exchange of an access token", value: TOKEN_EXCHANGE_EXAMPLE },
            jwt_bearer: { summary: "RFC 7523 jwt-bearer: an external OIDC token for a JWT of the account that trusts it", value: JWT_BEARER_EXAMPLE },
          },
        },
      },
    },
  },
  responses: { 200: { description: "The JWT", content: { "application/json": { schema: tokenResponse } } }, ...TOKEN_ERRORS },
});

/** Registers the OAuth endpoints and the discovery documents in the app's OpenAPI document. */
export function registerOAuthDocs(registry: Registry): void {
  registry.registerComponent("securitySchemes", "clientSecretBasic", {
    type: "http",
    scheme: "basic",
    description: "client_secret_basic: the service account id as user name, its access token as password",
  });
  registry.registerPath(tokenRoute("/oauth/token", "OAuth 2.0 token endpoint"));
  registry.registerPath(tokenRoute("/api/m2m/oauth/token", "OAuth 2.0 token endpoint (alias of /oauth/token)"));
  registry.registerPath({
    method: "post",
    path: "/oauth/introspect",
    tags: ["OAuth"],
    summary: "RFC 7662 token introspection",
    description: `Client-authenticated (${AUTH_METHODS}). \`{"active": false}\` and nothing else for a token that is not active or that the client may not see.`,
    security: CLIENT_AUTH,
    request: { body: { required: true, content: { [FORM]: { schema: tokenQuery, example: { token: "<access token or JWT>" } } } } },
    responses: { 200: { description: "The token's state", content: { "application/json": { schema: introspection } } }, ...oauthErrors({ 400: "invalid_request", 401: "invalid_client", 429: "slow_down" }) },
  });
  registry.registerPath({
    method: "post",
    path: "/oauth/revoke",
    tags: ["OAuth"],
    summary: "RFC 7009 token revocation",
    description: `Client-authenticated (${AUTH_METHODS}): a client revokes its own tokens (the platform root any): an access token at once, a JWT by its jti. Without client credentials the token authenticates itself and is revoked (self-revocation; a \`client_id\`, if sent, must be its account). 200 also for an unknown or dead token (RFC 7009 section 2.2).`,
    security: CLIENT_AUTH,
    request: { body: { required: true, content: { [FORM]: { schema: tokenQuery, example: { token: "<access token or JWT>" } } } } },
    responses: { 200: { description: "Revoked, or nothing to revoke" }, ...oauthErrors({ 400: "invalid_request, unauthorized_client (not the client's token)", 401: "invalid_client", 429: "slow_down" }) },
  });
  for (const [path, summary] of [
    ["/.well-known/oauth-authorization-server", "RFC 8414 authorization server metadata"],
    ["/.well-known/openid-configuration", "The same metadata at the OpenID Connect discovery location (Keyward issues no ID tokens)"],
  ] as const) {
    registry.registerPath({
      method: "get",
      path,
      tags: ["Discovery"],
      summary,
      responses: { 200: { description: "The metadata; its URLs are built from ISSUER", content: { "application/json": { schema: serverMetadata } } } },
    });
  }
  registry.registerPath({
    method: "get",
    path: "/.well-known/jwks.json",
    tags: ["Discovery"],
    summary: "RFC 7517 key set: every public key that can still verify a live JWT",
    responses: { 200: { description: "The key set", content: { "application/json": { schema: jwks } } } },
  });
}
