import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { getConfig, type Config } from "../../env.ts";
import type { AppEnv } from "../app-env.ts";
import { DomainError } from "../../domain/shared/errors.ts";
import { mediaType, requestIdFor, withSecurityHeaders } from "../../lib/http.ts";

/** Whether the configuration turns CORS on. */
export const corsEnabled = (config: Config) => config.CORS_ALLOWED_ORIGINS.length > 0;

const corsByConfig = new WeakMap<object, MiddlewareHandler<AppEnv> | null>();

/**
 * CORS is off unless CORS_ALLOWED_ORIGINS lists origins (or `*`): then those origins may call the
 * API from a browser with a bearer token (no cookies are used, so no credentials mode).
 */
function corsFor(config: Config): MiddlewareHandler<AppEnv> | null {
  let handler = corsByConfig.get(config);
  if (handler === undefined) {
    const origins = config.CORS_ALLOWED_ORIGINS;
    handler = !corsEnabled(config)
        ? null
        : cors({
            origin: origins.includes("*") ? "*" : origins,
            allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE"],
            allowHeaders: ["authorization", "content-type", "x-request-id", "dpop"],
            exposeHeaders: ["x-request-id", "retry-after", "www-authenticate", "location", "dpop-nonce"],
            maxAge: 600,
          });
    corsByConfig.set(config, handler);
  }
  return handler;
}

/**
 * Request id (a caller's sane `x-request-id` is kept), CORS when configured, and the security
 * headers every response carries. One middleware, as every layer costs each request.
 */
export const requestContext: MiddlewareHandler<AppEnv> = async (c, next) => {
  const requestId = requestIdFor(c.req.header("x-request-id"));
  c.set("requestId", requestId);
  const cors = corsFor(getConfig(c.env));
  if (!cors) await next();
  else {
    const preflight = await cors(c, next);
    if (preflight) c.res = preflight;
  }
  const headers = c.res.headers;
  const security = withSecurityHeaders(requestId, {});
  // A route's own value wins (the console's referrer policy: same-origin, so that browsers send its forms' Origin).
  for (const name in security) if (name === "x-request-id" || !headers.has(name)) headers.set(name, security[name]!);
  if (!headers.has("cache-control")) headers.set("cache-control", "no-store");
};

const isJsonType = (type: string) => type === "application/json" || type.endsWith("+json");

/** A JSON body or none (415 otherwise). */
export function assertJsonBody(contentType: string | null | undefined, hasBody: boolean): void {
  if (hasBody && !isJsonType(mediaType(contentType))) throw new DomainError("unsupported_media_type", "Send the body as application/json");
}

/** Bodies of the management API are JSON, at most MAX_BODY_BYTES and well-formed UTF-8. */
export const jsonBodies: MiddlewareHandler<AppEnv> = async (c, next) => {
  const method = c.req.method;
  if (method === "POST" || method === "PUT" || method === "PATCH") {
    const hasBody = c.req.header("transfer-encoding") !== undefined || Number(c.req.header("content-length") ?? "0") > 0;
    assertJsonBody(c.req.header("content-type"), hasBody);
    return limitBody(c, async () => {
      await requireUtf8Body(c);
      await next();
    });
  }
  await next();
};

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * RFC 8259 section 8.1: JSON exchanged between systems is UTF-8. The platform's body decoding
 * replaces every ill-formed sequence (a truncated one, an overlong encoding, an encoded surrogate)
 * with U+FFFD, so `bad\xc3\x28x` would be stored as `bad\uFFFD(x`: the body is decoded strictly
 * once, here, inside the size limit (a chunked body has been counted by then), and handed on as
 * the same bytes.
 */
async function requireUtf8Body(c: Context<AppEnv>): Promise<void> {
  if (c.req.raw.body === null) return;
  const bytes = await c.req.raw.arrayBuffer();
  jsonText(bytes);
  c.req.raw = new Request(c.req.raw, { body: bytes });
}

/** A JSON body's bytes as text, refused (malformed_json) when they are not well-formed UTF-8. */
export function jsonText(bytes: ArrayBuffer): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new DomainError("malformed_json", "The request body is not well-formed UTF-8; send JSON encoded as UTF-8 (RFC 8259 section 8.1)");
  }
}

const tooLarge = (limit: number) => new DomainError("payload_too_large", `The body is over the limit of ${limit} bytes`);

/** A declared Content-Length must be a number within `limit` (bad_request or payload_too_large otherwise). */
export function assertDeclaredLength(length: string, limit: number): void {
  if (!/^\d{1,15}$/.test(length)) throw new DomainError("bad_request", "Malformed Content-Length");
  if (Number(length) > limit) throw tooLarge(limit);
}

const limiters = new Map<number, MiddlewareHandler<AppEnv>>();

/**
 * At most MAX_BODY_BYTES of body, on every route that takes one: a declared Content-Length is
 * checked here; a body without one (chunked) is counted as it streams.
 */
export const limitBody: MiddlewareHandler<AppEnv> = (c, next) => {
  const limit = getConfig(c.env).MAX_BODY_BYTES;
  const length = c.req.header("content-length");
  if (length !== undefined && c.req.header("transfer-encoding") === undefined) {
    assertDeclaredLength(length, limit);
    return next();
  }
  let limiter = limiters.get(limit);
  if (!limiter) {
    limiter = bodyLimit({
      maxSize: limit,
      onError: () => {
        throw tooLarge(limit);
      },
    });
    limiters.set(limit, limiter);
  }
  return limiter(c, next);
};
