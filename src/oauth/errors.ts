import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../http/problem.ts";
import { withSecurityHeaders } from "../lib/http.ts";

/** RFC 6749 §5.2 error codes (plus RFC 8707's invalid_target). */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "invalid_scope"
  | "invalid_target"
  | "unsupported_token_type"
  | "server_error"
  | "temporarily_unavailable"
  /** RFC 8628 (IANA OAuth Extensions Error registry): the client must wait `Retry-After` seconds. */
  | "slow_down";

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
  else if (err instanceof ApiError) e = fromApiError(err);
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

function fromApiError(err: ApiError): OAuthError {
  switch (err.code) {
    case "invalid_scope":
      return new OAuthError("invalid_scope", err.detail);
    case "invalid_target":
      return new OAuthError("invalid_target", err.detail);
    case "signing_not_configured":
      return new OAuthError("temporarily_unavailable", err.detail, 503);
    case "payload_too_large":
      return new OAuthError("invalid_request", err.detail, 413);
    case "rate_limited":
      return new OAuthError("slow_down", err.detail, 429, err.extra.headers);
    // A client acting on a token that is not its own (RFC 7009 revocation of another client's token).
    case "permission_denied":
      return new OAuthError("unauthorized_client", err.detail);
    default:
      return new OAuthError("invalid_request", err.detail);
  }
}
