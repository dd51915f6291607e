import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";
import { DomainError, ERROR_TITLES, type ErrorCode } from "../domain/shared/errors.ts";
import type { AppEnv } from "./app-env.ts";
import { withSecurityHeaders } from "../lib/http.ts";
import { validationError } from "./validation.ts";
import { rateLimitHeaders } from "../lib/ratelimit-headers.ts";
import { DPOP_SIGNING_ALGS } from "../domain/credentials/dpop.ts";

/** Every stable error code of the management API, with its HTTP status (docs/errors.md's table). */
export const ERROR_STATUS = {
  validation_failed: 400,
  malformed_json: 400,
  bad_request: 400,
  token_lifetime_exceeded: 400,
  invalid_key: 400,
  invalid_scope: 400,
  invalid_duration: 400,
  invalid_target: 400,
  issuer_unavailable: 503,
  unauthenticated: 401,
  invalid_signature: 401,
  permission_denied: 403,
  not_found: 404,
  route_not_found: 404,
  status_list_not_found: 404,
  method_not_allowed: 405,
  name_taken: 409,
  email_taken: 409,
  slug_taken: 409,
  already_assigned: 409,
  token_limit_reached: 409,
  token_scope_not_allowed: 422,
  token_cidr_not_allowed: 422,
  jwt_quota_exceeded: 429,
  key_exists: 409,
  key_expired: 409,
  key_lifetime_exceeded: 422,
  jwks_uri_not_allowed: 422,
  key_limit_reached: 409,
  federated_credential_limit_reached: 409,
  issuer_not_allowed: 422,
  policy_too_broad: 422,
  webhook_url_not_allowed: 422,
  webhook_limit_reached: 409,
  conflict: 409,
  token_not_active: 409,
  account_not_active: 409,
  already_bootstrapped: 409,
  role_not_assignable: 422,
  invalid_metadata: 422,
  invalid_claim_mapping: 422,
  claim_name_reserved: 422,
  payload_too_large: 413,
  rate_limited: 429,
  unsupported_media_type: 415,
  internal_error: 500,
  bootstrap_not_configured: 503,
  signing_not_configured: 503,
  secret_scanning_not_configured: 503,
  invalid_dpop_proof: 401,
  use_dpop_nonce: 401,
  dpop_required: 401,
} as const satisfies Record<ErrorCode, ContentfulStatusCode>;


/** The headers a problem carries beside the ones every response has, from the error's data. */
function problemHeaders(err: DomainError): Record<string, string> {
  const headers: Record<string, string> = {};
  // RFC 6750 section 3: a 401 names the scheme the caller should use.
  if (err.code === "unauthenticated") headers["www-authenticate"] = 'Bearer realm="keyward"';
  // RFC 9110 section 11.6.1: every 401 names a scheme; a signed secret scanning report's is its signature headers.
  if (err.code === "invalid_signature") headers["www-authenticate"] = 'Signature realm="keyward", headers="github-public-key-identifier github-public-key-signature"';
  // RFC 9449 7.1: a DPoP challenge with the RFC's error code (a bound token sent as Bearer is an invalid token).
  const dpopError = { invalid_dpop_proof: "invalid_dpop_proof", use_dpop_nonce: "use_dpop_nonce", dpop_required: "invalid_token" }[err.code as string];
  if (dpopError) headers["www-authenticate"] = `DPoP realm="keyward", error="${dpopError}", algs="${DPOP_SIGNING_ALGS.join(" ")}"`;
  if (err.data.dpopNonce !== undefined) headers["dpop-nonce"] = err.data.dpopNonce;
  if (err.data.retryAfterSeconds !== undefined) headers["retry-after"] = String(err.data.retryAfterSeconds);
  if (err.data.rateLimit) Object.assign(headers, rateLimitHeaders(err.data.rateLimit));
  if (err.data.allow) headers.allow = err.data.allow.join(", ");
  return headers;
}

export const problemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.string(),
  requestId: z.string(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  missing: z.array(z.string()).optional(),
});

/** Renders a problem+json response (RFC 9457), with the headers every response carries. */
export function problemResponse(err: DomainError, requestId: string): Response {
  const status = ERROR_STATUS[err.code];
  const body = {
    type: `https://keyward.dev/problems/${err.code.replaceAll("_", "-")}`,
    title: ERROR_TITLES[err.code],
    status,
    detail: err.detail,
    code: err.code,
    requestId,
    ...(err.data.errors ? { errors: err.data.errors } : {}),
    ...(err.data.missing ? { missing: err.data.missing } : {}),
  };
  const headers = withSecurityHeaders(requestId, { "content-type": "application/problem+json", "cache-control": "no-store", ...problemHeaders(err) });
  return new Response(JSON.stringify(body), { status, headers });
}

export const problem = (c: Context<AppEnv>, err: DomainError) => problemResponse(err, c.get("requestId") ?? "");

/** The single error rendering: DomainError, Hono's HTTPException and anything else become problem+json. */
export function errorResponse(err: unknown, requestId: string): Response {
  return problemResponse(asDomainError(err, requestId), requestId);
}

export function asDomainError(err: unknown, requestId: string): DomainError {
  if (err instanceof DomainError) return err;
  if (err instanceof z.ZodError) return validationError(err, "request");
  if (err instanceof HTTPException) {
    const status = err.status;
    if (status === 413) return new DomainError("payload_too_large", "The request body is over the limit");
    if (status === 400 && /json/i.test(err.message)) return new DomainError("malformed_json", "The request body could not be parsed as JSON");
    if (status === 401) return new DomainError("unauthenticated", err.message || "Authentication required");
    return new DomainError("bad_request", err.message || "Bad request");
  }
  console.error(JSON.stringify({ level: "error", requestId, error: String((err as Error | undefined)?.stack ?? err) }));
  return new DomainError("internal_error", "An internal error occurred; quote the request id when reporting it");
}

/** The app's error handler. */
export const onError = (err: Error, c: Context<AppEnv>) => errorResponse(err, c.get("requestId") ?? "");
