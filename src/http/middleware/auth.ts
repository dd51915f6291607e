import type { MiddlewareHandler } from "hono";
import { authenticate } from "../../domain/credentials/bearer.ts";
import type { AppEnv } from "../app-env.ts";
import { ctxOf } from "../routes/common.ts";

/** The credential of an `Authorization: Bearer` header (RFC 6750 section 2.1), or null when there is none in that form. */
export function bearerToken(header: string | undefined): string | null {
  const match = /^Bearer[ ]+([\x21-\x7e]{1,8192})[ ]*$/i.exec(header ?? "");
  return match ? match[1]! : null;
}

/** Authenticates the bearer credential and puts the principal on the context. */
export const requireAuth: MiddlewareHandler<AppEnv> = async (c, next) => {
  c.set("principal", await authenticate(ctxOf(c, "anonymous"), bearerToken(c.req.header("authorization"))));
  await next();
};
