import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
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
      origins.length === 0
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

/**
 * Request id (a caller's sane `x-request-id` is kept), CORS when configured, and the security
 * headers every response carries. One middleware, as every layer costs each request.
 */
export const requestContext: MiddlewareHandler<AppEnv> = async (c, next) => {
  const incoming = c.req.header("x-request-id");
  // A request id needs uniqueness, not secrecy: the runtime's UUID is the cheapest per request.
  const requestId = incoming && SAFE_REQUEST_ID.test(incoming) ? incoming : `req_${crypto.randomUUID()}`;
  c.set("requestId", requestId);
  const cors = corsFor(getConfig(c.env));
  if (!cors) await next();
  else {
    const preflight = await cors(c, next);
    if (preflight) c.res = preflight;
  }
  const headers = c.res.headers;
  headers.set("x-request-id", requestId);
  headers.set("x-content-type-options", "nosniff");
  headers.set("referrer-policy", "no-referrer");
  headers.set("x-frame-options", "DENY");
  if (!headers.has("cache-control")) headers.set("cache-control", "no-store");
};

/** Bodies of the management API are JSON and at most MAX_BODY_BYTES. */
export const jsonBodies: MiddlewareHandler<AppEnv> = async (c, next) => {
  const method = c.req.method;
  if (method === "POST" || method === "PUT" || method === "PATCH") {
    const hasBody = c.req.header("transfer-encoding") !== undefined || Number(c.req.header("content-length") ?? "0") > 0;
    const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (hasBody && type !== "application/json" && !type.endsWith("+json")) {
      throw new ApiError("unsupported_media_type", "Send the body as application/json");
    }
    return limitBody(c, next);
  }
  await next();
};

const tooLarge = (limit: number) => new ApiError("payload_too_large", `The body is over the limit of ${limit} bytes`);
const limiters = new Map<number, MiddlewareHandler<AppEnv>>();

/**
 * At most MAX_BODY_BYTES of body, on every route that takes one: a declared Content-Length is
 * checked here; a body without one (chunked) is counted as it streams.
 */
export const limitBody: MiddlewareHandler<AppEnv> = (c, next) => {
  const limit = getConfig(c.env).MAX_BODY_BYTES;
  const length = c.req.header("content-length");
  if (length !== undefined && c.req.header("transfer-encoding") === undefined) {
    if (!/^\d{1,15}$/.test(length)) throw new ApiError("bad_request", "Malformed Content-Length");
    if (Number(length) > limit) throw tooLarge(limit);
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
