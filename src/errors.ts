import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";
import type { AppEnv } from "./env.ts";
import { withSecurityHeaders } from "./lib/http.ts";

/** Every stable error code of the management API, with its HTTP status. Documented in the README. */
export const ERROR_STATUS = {
  validation_failed: 400,
  malformed_json: 400,
  bad_request: 400,
  token_lifetime_exceeded: 400,
  invalid_key: 400,
  invalid_scope: 400,
  invalid_duration: 400,
  invalid_target: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  route_not_found: 404,
  method_not_allowed: 405,
  name_taken: 409,
  email_taken: 409,
  slug_taken: 409,
  already_assigned: 409,
  token_limit_reached: 409,
  key_exists: 409,
  key_limit_reached: 409,
  conflict: 409,
  token_not_active: 409,
  account_not_active: 409,
  already_bootstrapped: 409,
  role_not_assignable: 422,
  payload_too_large: 413,
  rate_limited: 429,
  unsupported_media_type: 415,
  internal_error: 500,
  bootstrap_not_configured: 503,
  signing_not_configured: 503,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof ERROR_STATUS;

const TITLES: Record<ErrorCode, string> = {
  validation_failed: "The request did not validate",
  malformed_json: "The request body is not valid JSON",
  bad_request: "Bad request",
  token_lifetime_exceeded: "The requested lifetime exceeds what is allowed",
  invalid_key: "The public key is not usable",
  invalid_scope: "The requested scope is not allowed",
  invalid_duration: "The requested duration is not allowed",
  invalid_target: "The requested audience is not allowed",
  unauthenticated: "Authentication required",
  permission_denied: "Permission denied",
  not_found: "Not found",
  route_not_found: "No such route",
  method_not_allowed: "Method not allowed",
  name_taken: "The name is already taken",
  email_taken: "The email is already taken",
  slug_taken: "The slug is already taken",
  already_assigned: "The account already holds this role at this scope",
  token_limit_reached: "The account already holds its maximum of active tokens",
  token_not_active: "The token is not active",
  key_exists: "A key with this kid is already registered",
  key_limit_reached: "The account holds its maximum of public keys",
  conflict: "Conflict with the current state",
  account_not_active: "The service account is not active",
  already_bootstrapped: "The platform is already bootstrapped",
  role_not_assignable: "The role cannot be assigned to a service account",
  payload_too_large: "The request body is too large",
  rate_limited: "Too many requests",
  unsupported_media_type: "Unsupported media type",
  internal_error: "Internal error",
  bootstrap_not_configured: "Bootstrap is not configured",
  signing_not_configured: "JWT signing is not configured",
};

export interface FieldError {
  path: string;
  message: string;
}

/** The one error type services and routes throw; `onError` renders it as problem+json. */
export class ApiError extends Error {
  readonly status: ContentfulStatusCode;
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly extra: { errors?: FieldError[]; headers?: Record<string, string>; missing?: string[] } = {},
  ) {
    super(detail);
    this.status = ERROR_STATUS[code];
  }
}

export const notFound = (what: string) => new ApiError("not_found", `${what} not found`);

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
export function problemResponse(err: ApiError, requestId: string): Response {
  const body = {
    type: `https://keyward.dev/problems/${err.code.replaceAll("_", "-")}`,
    title: TITLES[err.code],
    status: err.status,
    detail: err.detail,
    code: err.code,
    requestId,
    ...(err.extra.errors ? { errors: err.extra.errors } : {}),
    ...(err.extra.missing ? { missing: err.extra.missing } : {}),
  };
  const headers = withSecurityHeaders(requestId, { "content-type": "application/problem+json", "cache-control": "no-store", ...err.extra.headers });
  return new Response(JSON.stringify(body), { status: err.status, headers });
}

export const problem = (c: Context<AppEnv>, err: ApiError) => problemResponse(err, c.get("requestId") ?? "");

/** Field paths say where the field was: body.name, query.limit, path.org. */
const TARGET_NAMES: Record<string, string> = { json: "body", form: "body", param: "path" };

/** Turns zod issues into the `errors` list of a validation problem. */
export function validationError(error: z.ZodError, target: string): ApiError {
  const where = TARGET_NAMES[target] ?? target;
  const errors = error.issues.map((issue) => ({
    path: [where, ...issue.path.map(String)].join("."),
    message: issue.message,
  }));
  return new ApiError("validation_failed", `Invalid ${where}: ${errors.map((e) => e.path).join(", ")}`, { errors });
}

/** The single error rendering: ApiError, Hono's HTTPException and anything else become problem+json. */
export function errorResponse(err: unknown, requestId: string): Response {
  return problemResponse(asApiError(err, requestId), requestId);
}

function asApiError(err: unknown, requestId: string): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof z.ZodError) return validationError(err, "request");
  if (err instanceof HTTPException) {
    const status = err.status;
    if (status === 413) return new ApiError("payload_too_large", "The request body is over the limit");
    if (status === 400 && /json/i.test(err.message)) return new ApiError("malformed_json", "The request body could not be parsed as JSON");
    if (status === 401) return new ApiError("unauthenticated", err.message || "Authentication required");
    return new ApiError("bad_request", err.message || "Bad request");
  }
  console.error(JSON.stringify({ level: "error", requestId, error: String((err as Error | undefined)?.stack ?? err) }));
  return new ApiError("internal_error", "An internal error occurred; quote the request id when reporting it");
}

/** The app's error handler. */
export const onError = (err: Error, c: Context<AppEnv>) => errorResponse(err, c.get("requestId") ?? "");
