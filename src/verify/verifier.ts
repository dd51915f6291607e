import { createRemoteJWKSet, customFetch, errors, jwtVerify, type JWTPayload } from "jose";
import { checkDpopProof, memoryReplayCache, type DpopReplayCache, type DpopRequest } from "./dpop.ts";
import { KeywardJwtError } from "./errors.ts";
import { statusListReader, statusRefOf, type StatusListReader } from "./status-list.ts";

/** The algorithms Keyward signs with (JWT_SIGNING_ALG): never a MAC, never `none`. */
export const KEYWARD_ALGORITHMS = ["ES256", "RS256", "EdDSA"] as const;
/** RFC 9068 access tokens; duplicated from the service (src/domain/signing/jws.ts), which the SDK never imports. */
const ACCESS_TOKEN_TYP = "at+jwt";

export interface KeywardVerifierOptions {
  /** Keyward's ISSUER, e.g. `https://keyward.example.com` (no trailing slash). */
  issuer: string;
  /** The audience(s) this service accepts; a JWT must name at least one. */
  audience: string | string[];
  /** Scopes every accepted JWT must carry (all of them). */
  requiredScopes?: string[];
  /** Accepted algorithms, a subset of KEYWARD_ALGORITHMS (default: all three). */
  algorithms?: (typeof KEYWARD_ALGORITHMS)[number][];
  /** Seconds of clock skew allowed on exp, nbf, iat (default 5). */
  clockTolerance?: number;
  /** Check the token status list (revocation) when the JWT names one (default true). */
  checkStatus?: boolean;
  /** DPoP: how old a proof's iat may be, in seconds (default 60). */
  dpopMaxAgeSeconds?: number;
  /** DPoP: where proof jtis are remembered (default: in memory, 10000 entries). */
  dpopReplayCache?: DpopReplayCache;
  /** The fetch used for the JWKS and the status lists (default: the global fetch). */
  fetch?: typeof fetch;
  /** The clock, epoch ms (tests). */
  now?: () => number;
}

/** What the verifier accepted: the claims of a Keyward access token. */
export interface KeywardClaims extends JWTPayload {
  iss: string;
  sub: string;
  exp: number;
  jti: string;
  /** Granted scopes, as a list (the JWT carries them space-separated). */
  scopes: string[];
  scope?: string;
  client_id?: string;
  org_id?: string;
  groups?: string[];
  roles?: string[];
  cnf?: { jkt?: string };
}

export interface VerifyRequestOptions {
  /** The request's DPoP proof and method and URL: required when the token is DPoP-bound (`cnf.jkt`). */
  dpop?: DpopRequest;
}

export interface KeywardVerifier {
  verify(jwt: string, request?: VerifyRequestOptions): Promise<KeywardClaims>;
}

/** What jose reports, as a code and a message; jose's messages name claims and reasons, never the token. */
function fromJose(err: unknown): KeywardJwtError {
  if (err instanceof KeywardJwtError) return err;
  if (err instanceof errors.JWTExpired) return new KeywardJwtError("expired", "The JWT has expired (exp)");
  if (err instanceof errors.JWTClaimValidationFailed) {
    const byClaim: Record<string, [KeywardJwtError["code"], string]> = {
      iss: ["wrong_issuer", "The JWT's issuer (iss) is not the expected Keyward issuer"],
      aud: ["wrong_audience", "The JWT's audience (aud) is not one this service accepts"],
      typ: ["wrong_type", `The JWT's typ header is not ${ACCESS_TOKEN_TYP}`],
      nbf: ["not_yet_valid", "The JWT is not valid yet (nbf)"],
      iat: ["not_yet_valid", "The JWT's iat is in the future"],
    };
    const hit = byClaim[err.claim];
    if (err.reason === "missing") return new KeywardJwtError("missing_claim", `The JWT has no ${err.claim} claim`);
    if (hit) return new KeywardJwtError(hit[0], hit[1]);
    return new KeywardJwtError("malformed", `The JWT's ${err.claim} claim is invalid`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new KeywardJwtError("alg_not_allowed", `The JWT's alg is not one Keyward signs with (${KEYWARD_ALGORITHMS.join(", ")})`);
  if (err instanceof errors.JWSSignatureVerificationFailed) return new KeywardJwtError("bad_signature", "The JWT's signature does not verify against the issuer's JWKS");
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return new KeywardJwtError("bad_signature", "No key in the issuer's JWKS matches the JWT's kid and alg");
  }
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || err instanceof errors.JOSENotSupported) {
    return new KeywardJwtError(err instanceof errors.JOSENotSupported ? "alg_not_allowed" : "jwks_unavailable", err instanceof errors.JOSENotSupported ? "The JWT's algorithm or key type is not supported" : "The issuer's JWKS could not be fetched");
  }
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return new KeywardJwtError("malformed", "The token is not a valid compact JWS/JWT");
  // jose's remote set throws the generic error for a non-200 or unreadable JWKS response.
  if (err instanceof errors.JOSEError && err.code === "ERR_JOSE_GENERIC") return new KeywardJwtError("jwks_unavailable", "The issuer's JWKS could not be fetched (not a 200 JSON key set)");
  if (err instanceof errors.JOSEError) return new KeywardJwtError("malformed", `The JWT was refused (${err.code})`);
  // A network failure fetching the JWKS, or anything else: say where, never what the token was.
  return new KeywardJwtError("jwks_unavailable", `The issuer's JWKS could not be fetched (${err instanceof Error ? err.name : "error"})`);
}

const asList = (v: string | string[]) => (Array.isArray(v) ? v : [v]);

/**
 * A verifier for one issuer: its JWKS (jose's remote set: cached, refetched on an unknown kid
 * at most every 30 s), its status lists (cached per their ttl) and the DPoP replay cache are kept
 * across calls, so create it once per process.
 */
export function createKeywardVerifier(options: KeywardVerifierOptions): KeywardVerifier {
  const issuer = options.issuer.replace(/\/+$/, "");
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const now = options.now ?? Date.now;
  const algorithms = [...(options.algorithms ?? KEYWARD_ALGORITHMS)];
  if (algorithms.length === 0 || algorithms.some((a) => !(KEYWARD_ALGORITHMS as readonly string[]).includes(a))) {
    throw new TypeError(`algorithms must be a non-empty subset of ${KEYWARD_ALGORITHMS.join(", ")}`);
  }
  // jose names Ed25519 apart from EdDSA; Keyward's header says EdDSA.
  const joseAlgorithms = algorithms.includes("EdDSA") ? [...algorithms, "Ed25519"] : algorithms;
  const audience = asList(options.audience);
  if (audience.length === 0) throw new TypeError("audience is required");
  const clockTolerance = options.clockTolerance ?? 5;
  const requiredScopes = options.requiredScopes ?? [];
  const keys = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`), {
    [customFetch]: (url, init) => doFetch(url, init as RequestInit),
  });
  const replay = options.dpopReplayCache ?? memoryReplayCache(10_000, now);
  let statusLists: StatusListReader | undefined;

  return {
    async verify(jwt, request = {}) {
      if (typeof jwt !== "string" || jwt.length === 0) throw new KeywardJwtError("missing_token", "No token was presented");
      let claims: KeywardClaims;
      try {
        const { payload } = await jwtVerify(jwt, keys, {
          issuer,
          audience,
          typ: ACCESS_TOKEN_TYP,
          algorithms: joseAlgorithms,
          clockTolerance,
          requiredClaims: ["exp", "sub", "jti"],
          currentDate: new Date(now()),
        });
        claims = payload as KeywardClaims;
      } catch (err) {
        throw fromJose(err);
      }
      if (claims.scope !== undefined && typeof claims.scope !== "string") throw new KeywardJwtError("malformed", "The JWT's scope claim is not a string");
      const scopes = (claims.scope ?? "").split(" ").filter(Boolean);
      const missing = requiredScopes.filter((s) => !scopes.includes(s));
      if (missing.length > 0) throw new KeywardJwtError("insufficient_scope", `The JWT lacks the required scope(s): ${missing.join(" ")}`);

      const jkt = claims.cnf?.jkt;
      if (jkt !== undefined) {
        if (typeof jkt !== "string") throw new KeywardJwtError("malformed", "The JWT's cnf.jkt is not a string");
        await checkDpopProof(jwt, jkt, request.dpop, { now: now(), maxAgeSeconds: options.dpopMaxAgeSeconds ?? 60, clockTolerance, replay });
      }

      const ref = options.checkStatus === false ? null : statusRefOf(claims);
      if (ref) {
        statusLists ??= statusListReader({ issuer, keys, algorithms: joseAlgorithms, fetch: doFetch, now, clockTolerance });
        const status = await statusLists.statusOf(ref);
        if (status !== 0) throw new KeywardJwtError("revoked", `The JWT's credential is revoked (status list ${ref.uri}, index ${ref.idx})`);
      }
      return { ...claims, scopes };
    },
  };
}

const shared = new Map<string, KeywardVerifier>();

/**
 * Verifies a Keyward access token with a verifier shared by every call with the same issuer,
 * audience, scopes and algorithms (so the JWKS and the status lists are cached across calls).
 * Pass `fetch`/`now` only to a verifier of your own (createKeywardVerifier).
 */
export function verifyKeywardJwt(jwt: string, options: KeywardVerifierOptions & VerifyRequestOptions): Promise<KeywardClaims> {
  const { dpop, ...rest } = options;
  if (rest.fetch || rest.now || rest.dpopReplayCache) return createKeywardVerifier(rest).verify(jwt, { dpop });
  const key = JSON.stringify([rest.issuer, asList(rest.audience), rest.requiredScopes ?? [], rest.algorithms ?? [], rest.clockTolerance, rest.checkStatus, rest.dpopMaxAgeSeconds]);
  let verifier = shared.get(key);
  if (!verifier) {
    if (shared.size >= 32) shared.clear();
    verifier = createKeywardVerifier(rest);
    shared.set(key, verifier);
  }
  return verifier.verify(jwt, { dpop });
}
