import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { getConfig, type AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { newId } from "../lib/ids.ts";

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** Request id (a caller's sane `x-request-id` is kept) and the security headers every response carries. */
export const requestContext: MiddlewareHandler<AppEnv> = async (c, next) => {
  const incoming = c.req.header("x-request-id");
  const requestId = incoming && SAFE_REQUEST_ID.test(incoming) ? incoming : newId("request");
  c.set("requestId", requestId);
  await next();
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

/** At most MAX_BODY_BYTES of body, on every route that takes one. */
export const limitBody: MiddlewareHandler<AppEnv> = (c, next) => {
  const limit = getConfig(c.env).MAX_BODY_BYTES;
  return bodyLimit({
    maxSize: limit,
    onError: () => {
      throw new ApiError("payload_too_large", `The body is over the limit of ${limit} bytes`);
    },
  })(c, next);
};
