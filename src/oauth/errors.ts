import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "../http/app-env.ts";
import { DomainError, type ErrorCode } from "../domain/shared/errors.ts";
import { withSecurityHeaders } from "../lib/http.ts";
import { rateLimitHeaders } from "../lib/ratelimit-headers.ts";

/** RFC 6749 §5.2 error codes (plus RFC 8707's invalid_target). */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "invalid_scope"
  | "invalid_target"
  | "server_error"
  | "temporarily_unavailable"
  /** RFC 8628 (IANA OAuth Extensions Error registry): the client must wait `Retry-After` seconds. */
  | "slow_down"
  /** RFC 9449 5 and 8: the DPoP proof is invalid; the proof must carry the server's nonce (`DPoP-Nonce`). */
  | "invalid_dpop_proof"
  | "use_dpop_nonce";

export class OAuthError extends Error {
  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    readonly status: ContentfulStatusCode = 400,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
  }
}

/** invalid_client is a 401; when the client used Basic it carries a Basic challenge (RFC 6749 §5.2). */
export const invalidClient = (description: string, usedBasic: boolean) =>
  new OAuthError("invalid_client", description, 401, usedBasic ? { "www-authenticate": 'Basic realm="keyward", charset="UTF-8"' } : {});

/**
 * RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E only. Descriptions may quote
 * what the client sent, so anything else becomes "?" (and the text is kept short).
 */
const describable = (text: string) => text.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, "?").slice(0, 300);

/** The error rendering of the OAuth endpoints: RFC 6749 bodies, never problem+json, never cached. */
export function oauthErrorResponse(err: unknown, requestId: string): Response {
  let e: OAuthError;
  if (err instanceof OAuthError) e = err;
  else if (err instanceof DomainError) e = fromDomainError(err);
  else if (err instanceof HTTPException) e = new OAuthError("invalid_request", err.status === 413 ? "The body is too large" : "Malformed request");
  else {
    console.error(JSON.stringify({ level: "error", requestId, error: String((err as Error | undefined)?.stack ?? err) }));
    e = new OAuthError("server_error", `Internal error; quote request id ${requestId}`, 500);
  }
  return new Response(JSON.stringify({ error: e.error, error_description: describable(e.description) }), {
    status: e.status,
    headers: withSecurityHeaders(requestId, { "content-type": "application/json", "cache-control": "no-store", pragma: "no-cache", ...e.headers }),
  });
}

/** The error handler of the OAuth routers. */
export const onOAuthError = (err: Error, c: Context<AppEnv>) => oauthErrorResponse(err, c.get("requestId") ?? "");

/**
 * How a domain error reads at the OAuth endpoints (RFC 6749 section 5.2); any code not listed is
 * an invalid_request with a 400.
 */
const OAUTH_ERRORS: Partial<Record<ErrorCode, { error: OAuthErrorCode; status?: ContentfulStatusCode }>> = {
  invalid_scope: { error: "invalid_scope" },
  invalid_target: { error: "invalid_target" },
  signing_not_configured: { error: "temporarily_unavailable", status: 503 },
  payload_too_large: { error: "invalid_request", status: 413 },
  rate_limited: { error: "slow_down", status: 429 },
  jwt_quota_exceeded: { error: "slow_down", status: 429 },
  // A client acting on a token that is not its own (RFC 7009 revocation of another client's token).
  permission_denied: { error: "unauthorized_client" },
  invalid_dpop_proof: { error: "invalid_dpop_proof" },
  use_dpop_nonce: { error: "use_dpop_nonce" },
  // A client whose tokens must be bound sent no proof.
  dpop_required: { error: "invalid_dpop_proof" },
};

function fromDomainError(err: DomainError): OAuthError {
  const mapped = OAUTH_ERRORS[err.code] ?? { error: "invalid_request" };
  const headers: Record<string, string> = err.data.retryAfterSeconds !== undefined ? { "retry-after": String(err.data.retryAfterSeconds) } : {};
  if (err.data.rateLimit) Object.assign(headers, rateLimitHeaders(err.data.rateLimit));
  if (err.data.dpopNonce !== undefined) headers["dpop-nonce"] = err.data.dpopNonce;
  return new OAuthError(mapped.error, err.detail, mapped.status ?? 400, headers);
}
