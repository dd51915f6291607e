import type { MiddlewareHandler } from "hono";
import { authenticate } from "../../domain/credentials/bearer.ts";
import type { AppEnv } from "../app-env.ts";
import { ctxOf } from "../routes/common.ts";

/** Authenticates the bearer credential and puts the principal on the context. */
export const requireAuth: MiddlewareHandler<AppEnv> = async (c, next) => {
  c.set("principal", await authenticate(ctxOf(c, "anonymous"), c.req.header("authorization")));
  await next();
};
