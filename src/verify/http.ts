import { KeywardJwtError } from "./errors.ts";
import { createKeywardVerifier, type KeywardClaims, type KeywardVerifier, type KeywardVerifierOptions } from "./verifier.ts";

export interface KeywardAuthOptions extends KeywardVerifierOptions {
  /** The URL the client signed in its DPoP proof (`htu`): set it behind a proxy that rewrites the URL (default: request.url). */
  requestUrl?: (request: Request) => string;
  /** Called with every refusal, for the service's logs (the error never contains the token). */
  onRefused?: (error: KeywardJwtError, request: Request) => void;
}

/** Verifies the request's `Authorization: Bearer|DPoP <jwt>` (and `DPoP` proof); throws KeywardJwtError. */
export async function verifyRequest(verifier: KeywardVerifier, request: Request, requestUrl?: (request: Request) => string): Promise<KeywardClaims> {
  const authorization = request.headers.get("authorization") ?? "";
  const match = /^(Bearer|DPoP) +([A-Za-z0-9._~+/-]+=*)$/i.exec(authorization.trim());
  if (!match) throw new KeywardJwtError("missing_token", "No Bearer or DPoP token in the Authorization header");
  const scheme = match[1]!.toLowerCase();
  const proof = request.headers.get("dpop");
  const claims = await verifier.verify(match[2]!, { dpop: { proof, method: request.method, url: requestUrl ? requestUrl(request) : request.url } });
  // RFC 9449 section 7.1: a bound token is sent with the DPoP scheme, and only a bound token is.
  if (claims.cnf?.jkt !== undefined && scheme !== "dpop") throw new KeywardJwtError("dpop_required", "A DPoP-bound token must be sent with the DPoP authorization scheme");
  if (claims.cnf?.jkt === undefined && scheme === "dpop") throw new KeywardJwtError("dpop_invalid", "The DPoP scheme was used with a token that is not DPoP-bound");
  return claims;
}

/** The RFC 6750 answer to a refused token: 401 invalid_token, 403 insufficient_scope, 503 when Keyward could not be reached. */
export function refusal(error: KeywardJwtError): Response {
  const oauthError = error.status === 403 ? "insufficient_scope" : error.status === 503 ? "temporarily_unavailable" : "invalid_token";
  const headers = new Headers({ "content-type": "application/json", "cache-control": "no-store" });
  if (error.status !== 503) {
    const description = error.message.replace(/["\\]/g, "'");
    const scheme = error.code.startsWith("dpop_") ? "DPoP" : "Bearer";
    headers.set("www-authenticate", error.code === "missing_token" ? `${scheme} realm="keyward"` : `${scheme} realm="keyward", error="${oauthError}", error_description="${description}"`);
  }
  return new Response(JSON.stringify({ error: oauthError, error_description: error.message, code: error.code }), { status: error.status, headers });
}

export type KeywardFetchHandler<E extends unknown[]> = (request: Request, claims: KeywardClaims, ...rest: E) => Response | Promise<Response>;

/**
 * Wraps a plain fetch handler (a Worker's `fetch(request, env, ctx)`, or Node's `(request) =>
 * Response`): the handler runs only with a verified token, and gets its claims after the request.
 */
export function withKeywardAuth<E extends unknown[]>(handler: KeywardFetchHandler<E>, options: KeywardAuthOptions): (request: Request, ...rest: E) => Promise<Response> {
  const verifier = createKeywardVerifier(options);
  return async (request, ...rest) => {
    let claims: KeywardClaims;
    try {
      claims = await verifyRequest(verifier, request, options.requestUrl);
    } catch (err) {
      if (!(err instanceof KeywardJwtError)) throw err;
      options.onRefused?.(err, request);
      return refusal(err);
    }
    return handler(request, claims, ...rest);
  };
}
