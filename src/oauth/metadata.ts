import { Hono, type Context } from "hono";
import { getKeyset } from "../domain/signing/jwt.ts";
import { ORG_OPERATIONS } from "../domain/access/permissions.ts";
import { publishedKeys, SIGNING_ALGS, toJwk } from "../domain/signing/keyset.ts";
import type { AppEnv } from "../http/app-env.ts";
import { ctxOf } from "../http/routes/common.ts";
import { JWT_BEARER_ASSERTION } from "./client-auth.ts";
import { GRANT_TYPES } from "./grants/index.ts";
import { DPOP_SIGNING_ALGS } from "../domain/credentials/dpop.ts";

const AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"];

/**
 * RFC 8414 authorization server metadata. Served as well at /.well-known/openid-configuration,
 * where many clients look first, with the same members: nothing in it claims an OpenID Connect
 * feature (no id_token, no userinfo, no authorization endpoint).
 * `scopes_supported` lists the org-level operations a JWT may carry; platform.root is not a scope
 * anyone requests by discovery.
 */
function serverMetadata(issuer: string) {
  return {
    issuer,
    token_endpoint: `${issuer}/oauth/token`,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    introspection_endpoint: `${issuer}/oauth/introspect`,
    revocation_endpoint: `${issuer}/oauth/revoke`,
    grant_types_supported: GRANT_TYPES,
    // RFC 8414 section 2 requires this member and section 3.2 forbids an empty array; with no
    // authorization endpoint, "none" (OAuth 2.0 Multiple Response Type Encoding Practices
    // section 4) is the one registered response type that promises nothing from one.
    response_types_supported: ["none"],
    token_endpoint_auth_methods_supported: AUTH_METHODS,
    token_endpoint_auth_signing_alg_values_supported: SIGNING_ALGS,
    introspection_endpoint_auth_methods_supported: AUTH_METHODS,
    // RFC 8414 section 2: required where private_key_jwt is listed (one client authentication for all endpoints).
    introspection_endpoint_auth_signing_alg_values_supported: SIGNING_ALGS,
    revocation_endpoint_auth_methods_supported: AUTH_METHODS,
    revocation_endpoint_auth_signing_alg_values_supported: SIGNING_ALGS,
    scopes_supported: ORG_OPERATIONS,
    client_assertion_types_supported: [JWT_BEARER_ASSERTION],
    // RFC 9449 5.1.
    dpop_signing_alg_values_supported: DPOP_SIGNING_ALGS,
    service_documentation: `${issuer}/docs`,
  };
}

function metadataResponse(c: Context<AppEnv>) {
  c.header("cache-control", "public, max-age=3600");
  return c.json(serverMetadata(ctxOf(c).config.ISSUER));
}

/** RFC 8414 metadata (at both discovery paths) and the RFC 7517 key set. */
export const wellKnownRoutes = new Hono<AppEnv>()
  .get("/oauth-authorization-server", metadataResponse)
  .get("/openid-configuration", metadataResponse)
  .get("/jwks.json", async (c) => {
    const ctx = ctxOf(c);
    const keyset = await getKeyset(ctx);
    c.header("cache-control", `public, max-age=${ctx.config.JWKS_MAX_AGE_SECONDS}`);
    return c.json({ keys: publishedKeys(keyset, ctx.now()).map(toJwk) });
  });
