import type { MiddlewareHandler } from "hono";
import { authenticate } from "../domain/authn.ts";
import type { AppEnv } from "../env.ts";

/** Authenticates the bearer credential and puts the principal on the context. */
export const requireAuth: MiddlewareHandler<AppEnv> = async (c, next) => {
  c.set("principal", await authenticate(c.env, c.req.header("authorization"), Date.now()));
  await next();
};
