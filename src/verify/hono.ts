import type { MiddlewareHandler } from "hono";
import { KeywardJwtError } from "./errors.ts";
import { refusal, verifyRequest, type KeywardAuthOptions } from "./http.ts";
import { createKeywardVerifier, type KeywardClaims } from "./verifier.ts";

export interface KeywardAuthEnv {
  Variables: { keyward: KeywardClaims };
}

/** Hono middleware: verifies the request's Keyward JWT and sets `c.var.keyward` to its claims, or answers 401/403/503. */
export function keywardAuth(options: KeywardAuthOptions): MiddlewareHandler<KeywardAuthEnv> {
  const verifier = createKeywardVerifier(options);
  return async (c, next) => {
    try {
      c.set("keyward", await verifyRequest(verifier, c.req.raw, options.requestUrl));
    } catch (err) {
      if (!(err instanceof KeywardJwtError)) throw err;
      options.onRefused?.(err, c.req.raw);
      return refusal(err);
    }
    await next();
  };
}
