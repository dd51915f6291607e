import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createCtx, type Ctx, type D1Handle } from "../../domain/shared/context.ts";
import type { PermissionedOperation } from "../../domain/access/permissions.ts";
import type { Bindings } from "../../env.ts";
import type { AppEnv } from "../app-env.ts";
import { problemSchema } from "../problem.ts";
import { validationError } from "../validation.ts";
import { DomainError } from "../../domain/shared/errors.ts";

/** A router whose validation failures all become the same problem+json (one shared hook). */
export function router() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error, result.target);
    },
  });
}

/** The service context of a request (the hot path has no Hono context): `actorId` is the audit actor. */
export function requestCtx(env: Bindings, headers: Headers, requestId: string, waitUntil: (p: Promise<unknown>) => void, actorId = "anonymous", d1: D1Handle = env.DB): Ctx {
  return createCtx(env, { actorId, requestId, ip: headers.get("cf-connecting-ip"), userAgent: headers.get("user-agent") }, waitUntil, d1);
}

/** The service context of a request: its principal (if any) is the audit actor. */
export function ctxOf(c: Context<AppEnv>, actorId?: string): Ctx {
  let waitUntil: (p: Promise<unknown>) => void = () => {};
  try {
    const ec = c.executionCtx;
    waitUntil = (p) => ec.waitUntil(p);
  } catch {
    // no execution context (direct app.request in tests)
  }
  return requestCtx(c.env, c.req.raw.headers, c.get("requestId"), waitUntil, actorId ?? c.get("principal")?.accountId, c.get("d1Session") ?? c.env.DB);
}

export const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

const problemContent = { "application/problem+json": { schema: problemSchema } };
const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "Invalid request (validation_failed, malformed_json, ...)",
  401: "Missing or invalid credential (unauthenticated)",
  403: "Authenticated but not permitted (permission_denied)",
  404: "Not found, or not visible to the caller",
  409: "Conflict with the current state",
  413: "Body over the size limit",
  415: "Body is not JSON",
  422: "Semantically invalid",
};

/** Problem+json responses for the given statuses, for a route's OpenAPI description. */
export function errors(...statuses: number[]) {
  return Object.fromEntries(statuses.map((s) => [s, { description: ERROR_DESCRIPTIONS[s] ?? "Error", content: problemContent }]));
}

export const jsonBody = <T extends z.ZodType>(schema: T, required = true) => ({
  body: { required, content: { "application/json": { schema } } },
});

/**
 * A request's JSON body (its text) checked against a route's schema, for the routes the hot path serves
 * (src/hot-path.ts), which skip the OpenAPI validator middleware (they are still documented from
 * the same schema, with `openAPIRegistry.registerPath`): the same errors. `plain`, if given, checks
 * the usual bodies without zod (its parse runs an interpreted path in workerd, which cannot
 * generate code): what it returns must be what the schema would, and for anything it is unsure
 * of it returns undefined, and the schema decides and words the errors.
 */
export function validJson<T extends z.ZodType>(text: string, schema: T, plain?: (raw: unknown) => z.infer<T> | undefined): z.infer<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new DomainError("malformed_json", "The request body could not be parsed as JSON");
  }
  const checked = plain?.(raw);
  if (checked !== undefined) return checked;
  const result = schema.safeParse(raw);
  if (!result.success) throw validationError(result.error, "json");
  return result.data;
}

export const jsonResponse = <T extends z.ZodType>(description: string, schema: T) => ({
  description,
  content: { "application/json": { schema } },
});

export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50).openapi({ description: "Page size (1..200)" }),
  cursor: z.string().max(512).optional().openapi({ description: "The nextCursor of the previous page" }),
});

export const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), nextCursor: z.string().nullable() });

export const security = [{ bearer: [] }];

const GUARD_TEXT =
  " The caller must also hold everything the account holds, in every org where it holds it (the no-escalation guard); to take access away" +
  " (revoke, remove a key or a role, disable, delete), `service-accounts.incident-response` or being the account itself also does, and the audit log marks incident responses.";

/**
 * Route metadata read from the domain operation the handler calls (`withPermission`): the
 * permission it documents (`x-required-permission`) is the one the operation enforces.
 */
export const needs = (operation: Pick<PermissionedOperation<never, unknown>, "permission" | "guard">) => ({
  security,
  "x-required-permission": operation.permission,
  ...(operation.guard === "covers" ? { "x-escalation-guard": true } : {}),
  description: `Requires \`${operation.permission}\`.${operation.guard === "covers" ? GUARD_TEXT : ""}`,
});

/**
 * A string checked by `re` whose OpenAPI `pattern` is `re.source`. The document generator prints
 * the regex with `String(re)` and strips the slashes, which leaves a flag suffix (`...$/u`) that no
 * input can match. A JSON Schema pattern has no flags and is compiled as an ECMA-262 regex with
 * Unicode semantics, so `u` is the one flag allowed: write case-insensitivity into the pattern.
 */
export function matching(schema: z.ZodString, re: RegExp, message: string): z.ZodString {
  if (re.flags !== "" && re.flags !== "u") throw new Error(`${String(re)}: a pattern cannot carry flags (write them into the pattern)`);
  return schema.regex(re, message).openapi({ pattern: re.source });
}

export const slugSchema = matching(
  z.string(),
  /^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,38}[a-zA-Z0-9])?$/,
  "must be 1-40 letters, digits or dashes, not starting or ending with a dash",
).openapi({ example: "acme" });

/**
 * Free text: no control characters, no lone UTF-16 surrogates (D1 would store them mangled) and
 * no bidi embedding, override or isolate controls (U+202A-U+202E, U+2066-U+2069), which make a
 * string display as another ("Trojan Source"); letters, emoji and their joiners stay allowed.
 */
const FREE_TEXT = /^[^\p{Cc}\p{Cs}\u202a-\u202e\u2066-\u2069]*$/u;

/**
 * Characters a name that identifies something must not hold (Unicode TR 36 and UTS 39: they make
 * look-alikes of another name): controls, every format character (zero-width spaces and joiners,
 * bidi marks and controls, U+FEFF, the soft hyphen U+00AD...), other default-ignorable code points
 * (variation selectors, Hangul fillers, U+034F), private-use characters, lone surrogates, and any
 * separator but the ASCII space (no-break and other-width spaces, line and paragraph separators).
 */
const NAME_TEXT = /^(?:[^\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Z}\p{Default_Ignorable_Code_Point}]| )*$/u;

/**
 * Free text, trimmed and in Unicode NFC, so that what is stored and compared is one form of what a
 * person sees (e.g. "é" as one code point, never as "e" + U+0301).
 */
export const displayText = (max: number) =>
  matching(z.string().trim().normalize("NFC").min(1).max(max), FREE_TEXT, "must not contain control characters, bidi controls or lone surrogates");

/**
 * A name that identifies something (an account's name, unique in its org): displayText without
 * any invisible or look-alike character (NAME_TEXT). In NFC, so two names that render the same
 * compare equal where the domain compares them (its name key lowercases the normalized name).
 */
export const nameText = (max: number) =>
  matching(
    z.string().trim().normalize("NFC").min(1).max(max),
    NAME_TEXT,
    "must not contain invisible, format or bidi control characters, or whitespace other than the space",
  );
