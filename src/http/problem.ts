import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";
import type { AppEnv } from "../env.ts";
import { withSecurityHeaders } from "../lib/http.ts";

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

const MAX_LISTED = 5;

/**
 * Turns zod issues into the `errors` list of a validation problem: each item keeps its field path
 * (`body.name`) and says in words what is wrong with it ("name is required"); the detail lists the
 * first few. Input values are never echoed (a body may carry a secret in the wrong field).
 */
export function validationError(error: z.ZodError, target: string): ApiError {
  const where = TARGET_NAMES[target] ?? target;
  const errors = error.issues.map((issue) => ({
    path: [where, ...issue.path.map(String)].join("."),
    message: fieldSentence(fieldName(issue.path, where), issue.message),
  }));
  const listed = errors.slice(0, MAX_LISTED).map((e) => e.message);
  const more = errors.length > MAX_LISTED ? `; and ${errors.length - MAX_LISTED} more (see errors)` : "";
  return new ApiError("validation_failed", `Invalid ${where}: ${listed.join("; ")}${more}`, { errors });
}

/** `roles[0].scope.type`; the part itself (`the body`) when the issue is about all of it. */
function fieldName(path: PropertyKey[], where: string): string {
  if (path.length === 0) return `the ${where}`;
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`)).join("");
}

/** A predicate ("is required", "must be ...") follows its field; any other message is quoted after it. */
const PREDICATE = /^(?:is|are|must|has|have|does|cannot) /;
const fieldSentence = (field: string, message: string) => (PREDICATE.test(message) ? `${field} ${message}` : `${field}: ${message}`);

const article = (noun: string) => (/^[aeio]/.test(noun) ? `an ${noun}` : `a ${noun}`);
const EXPECTED: Record<string, string> = { int: "an integer", array: "an array", object: "an object", null: "null", undefined: "absent", nan: "NaN" };
const expectedType = (t: string) => EXPECTED[t] ?? article(t);

/** What a value is, in words: its type, never the value itself. */
function kindOf(input: unknown): string | undefined {
  if (input === null) return "null";
  if (Array.isArray(input)) return "an array";
  if (typeof input === "number" && Number.isNaN(input)) return undefined;
  return typeof input === "object" ? "an object" : article(typeof input);
}

const FORMATS: Record<string, string> = {
  email: "must be an email address",
  datetime: "must be an ISO 8601 date-time with a time zone, e.g. 2030-01-31T12:00:00Z",
  date: "must be an ISO 8601 date, e.g. 2030-01-31",
  url: "must be a URL",
  uuid: "must be a UUID",
};
const counted = (n: number | bigint, one: string) => `${n} ${one}${n === 1 ? "" : "s"}`;

function sizeBound(origin: string, bound: number | bigint, atLeast: boolean, inclusive: boolean | undefined): string {
  const most = atLeast ? "at least" : "at most";
  if (origin === "string") return atLeast && bound === 1 ? "must not be empty" : `must be ${most} ${counted(bound, "character")} long`;
  if (origin === "array" || origin === "set") return atLeast && bound === 1 ? "must not be empty" : `must have ${most} ${counted(bound, "item")}`;
  if (inclusive === false) return `must be ${atLeast ? "greater" : "less"} than ${bound}`;
  return `must be ${most} ${bound}`;
}

function listOf(values: readonly unknown[]): string {
  const shown = values.slice(0, 12).map((v) => JSON.stringify(v));
  return values.length > 12 ? `${shown.join(", ")}, ...` : shown.join(", ");
}

/** Union branches that each want another type at the union itself: "must be a boolean or an object, not a string". */
function unionTypes(branches: readonly (readonly z.core.$ZodIssue[])[]): string[] | undefined {
  const wanted = branches.map((issues) => issues.find((i) => i.code === "invalid_type" && i.path.length === 0) as z.core.$ZodIssueInvalidType | undefined);
  return wanted.every((w) => w !== undefined) ? [...new Set(wanted.map((w) => expectedType(w!.expected)))] : undefined;
}

/**
 * The default message of each zod issue, as a predicate on its field ("is required", "must be at
 * most 64 characters long"): installed as zod's error map, so a message written on a schema
 * (`.regex(re, "...")`) still wins.
 */
export function issueMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type": {
      if (issue.input === undefined) return "is required";
      if (issue.expected === "int" && typeof issue.input === "number") return "must be an integer";
      const got = kindOf(issue.input);
      return `must be ${expectedType(issue.expected)}${got ? `, not ${got}` : ""}`;
    }
    case "too_small":
      return sizeBound(issue.origin, issue.minimum, true, issue.inclusive);
    case "too_big":
      return sizeBound(issue.origin, issue.maximum, false, issue.inclusive);
    case "invalid_value":
      return issue.values.length === 1 ? `must be ${JSON.stringify(issue.values[0])}` : `must be one of ${listOf(issue.values)}`;
    case "unrecognized_keys": {
      const keys = issue.keys.map((k) => (k.length > 64 ? `${k.slice(0, 64)}...` : k));
      return `has ${keys.length === 1 ? "an unknown field" : "unknown fields"} ${listOf(keys)} (not allowed here)`;
    }
    case "invalid_format":
      if (issue.format === "regex") return `must match the pattern ${issue.pattern ?? ""}`.trimEnd();
      return FORMATS[issue.format] ?? `must be a valid ${issue.format}`;
    case "not_multiple_of":
      return `must be a multiple of ${issue.divisor}`;
    case "invalid_union": {
      const types = "errors" in issue && issue.errors.length > 0 ? unionTypes(issue.errors) : undefined;
      const got = kindOf(issue.input);
      return types ? `must be ${types.join(" or ")}${got ? `, not ${got}` : ""}` : "does not match any of the accepted forms";
    }
    case "invalid_key":
      return "has a key that is not allowed";
    case "invalid_element":
      return "has an element that is not allowed";
    default:
      return undefined;
  }
}

z.config({ customError: issueMessage });

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
