import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { getConfig, type AppEnv, type Config } from "../env.ts";
import { ApiError } from "../errors.ts";

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

const corsByConfig = new WeakMap<object, MiddlewareHandler<AppEnv> | null>();

/**
 * CORS is off unless CORS_ALLOWED_ORIGINS lists origins (or `*`): then those origins may call the
 * API from a browser with a bearer token (no cookies are used, so no credentials mode).
 */
function corsFor(config: Config): MiddlewareHandler<AppEnv> | null {
  let handler = corsByConfig.get(config);
  if (handler === undefined) {
    const origins = config.CORS_ALLOWED_ORIGINS;
    handler =
      !corsEnabled(config)
        ? null
        : cors({
            origin: origins.includes("*") ? "*" : origins,
            allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE"],
            allowHeaders: ["authorization", "content-type", "x-request-id"],
            exposeHeaders: ["x-request-id", "retry-after", "www-authenticate", "location"],
            maxAge: 600,
          });
    corsByConfig.set(config, handler);
  }
  return handler;
}

/** The request id of a request: the caller's `x-request-id` when sane, else a fresh one. */
export function requestIdFor(incoming: string | null | undefined): string {
  // A request id needs uniqueness, not secrecy: the runtime's UUID is the cheapest per request.
  return incoming && SAFE_REQUEST_ID.test(incoming) ? incoming : `req_${crypto.randomUUID()}`;
}

/** The headers every response carries: its request id and the security headers. */
export function applyResponseHeaders(headers: Headers, requestId: string): void {
  headers.set("x-request-id", requestId);
  headers.set("x-content-type-options", "nosniff");
  headers.set("referrer-policy", "no-referrer");
  headers.set("x-frame-options", "DENY");
  if (!headers.has("cache-control")) headers.set("cache-control", "no-store");
}

/** Whether the configuration turns CORS on (then every request goes through the app's CORS handling). */
export const corsEnabled = (config: Config) => config.CORS_ALLOWED_ORIGINS.length > 0;

/**
 * Request id (a caller's sane `x-request-id` is kept), CORS when configured, and the response
 * headers. One middleware, as every layer costs each request.
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
  applyResponseHeaders(c.res.headers, requestId);
};

/** The media type of a Content-Type header, lowercased, without parameters. */
export const mediaType = (header: string | null | undefined) => (header ?? "").split(";")[0]!.trim().toLowerCase();

/** Bodies of the management API are JSON and at most MAX_BODY_BYTES. */
export const jsonBodies: MiddlewareHandler<AppEnv> = async (c, next) => {
  const method = c.req.method;
  if (method === "POST" || method === "PUT" || method === "PATCH") {
    const hasBody = c.req.header("transfer-encoding") !== undefined || Number(c.req.header("content-length") ?? "0") > 0;
    const type = mediaType(c.req.header("content-type"));
    if (hasBody && type !== "application/json" && !type.endsWith("+json")) {
      throw new ApiError("unsupported_media_type", "Send the body as application/json");
    }
    return limitBody(c, next);
  }
  await next();
};

const tooLarge = (limit: number) => new ApiError("payload_too_large", `The body is over the limit of ${limit} bytes`);

/** A declared Content-Length must be a number within `limit` (throws bad_request or payload_too_large). */
function checkDeclaredLength(length: string, limit: number): void {
  if (!/^\d{1,15}$/.test(length)) throw new ApiError("bad_request", "Malformed Content-Length");
  if (Number(length) > limit) throw tooLarge(limit);
}

const declaredLength = (headers: Headers) => (headers.has("transfer-encoding") ? null : headers.get("content-length"));

/**
 * The body of a request, at most `limit` bytes (MAX_BODY_BYTES): a declared Content-Length is
 * checked before reading, a body without one (chunked) is counted as it streams.
 */
export async function boundedBody(request: Request, limit: number): Promise<Uint8Array> {
  const length = declaredLength(request.headers);
  if (length !== null) {
    checkDeclaredLength(length, limit);
    return new Uint8Array(await request.arrayBuffer());
  }
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw tooLarge(limit);
    }
    parts.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    body.set(part, offset);
    offset += part.byteLength;
  }
  return body;
}

/** At most MAX_BODY_BYTES of body on every route that takes one (a streamed body is read here, within the limit). */
export const limitBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  const limit = getConfig(c.env).MAX_BODY_BYTES;
  const length = declaredLength(c.req.raw.headers);
  if (length !== null) checkDeclaredLength(length, limit);
  else if (c.req.raw.body) c.req.raw = new Request(c.req.raw, { body: await boundedBody(c.req.raw, limit) });
  await next();
};
