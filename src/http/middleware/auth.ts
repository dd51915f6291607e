import type { MiddlewareHandler } from "hono";
import { authenticate, type PresentedCredential } from "../../domain/credentials/bearer.ts";
import type { AppEnv } from "../app-env.ts";
import { ctxOf } from "../routes/common.ts";

const CREDENTIAL = /^(Bearer|DPoP)[ ]+([\x21-\x7e]{1,8192})[ ]*$/i;

/** The credential of an `Authorization: Bearer` header (RFC 6750 section 2.1), or null when there is none in that form. */
export function bearerToken(header: string | undefined): string | null {
  const presented = presentedCredential(header);
  return presented?.scheme === "Bearer" ? presented.token : null;
}

/** The credential of an `Authorization: Bearer` or (RFC 9449 7.1) `Authorization: DPoP` header, or null. */
export function presentedCredential(header: string | undefined): PresentedCredential | null {
  const match = CREDENTIAL.exec(header ?? "");
  if (!match) return null;
  return { scheme: match[1]!.toLowerCase() === "dpop" ? "DPoP" : "Bearer", token: match[2]! };
}

/** Authenticates the bearer (or DPoP-bound) credential and puts the principal on the context. */
export const requireAuth: MiddlewareHandler<AppEnv> = async (c, next) => {
  const presented = presentedCredential(c.req.header("authorization"));
  const proof = { header: c.req.header("dpop"), method: c.req.method, url: c.req.url };
  c.set("principal", await authenticate(ctxOf(c, "anonymous"), presented, proof));
  await next();
};
