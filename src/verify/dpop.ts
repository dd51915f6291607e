import { base64url, calculateJwkThumbprint, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from "jose";
import { KeywardJwtError } from "./errors.ts";

/** The request a DPoP proof must be bound to (RFC 9449 section 4.3). */
export interface DpopRequest {
  /** The `DPoP` header: one proof JWT, or null/undefined when the request has none. */
  proof: string | null | undefined;
  /** The request's method (`htm`). */
  method: string;
  /** The request's URL (`htu` is compared without its query and fragment). */
  url: string;
}

/**
 * Remembers proof jtis, so a proof is used once. `use` answers false when `jti` was already used
 * (before `expiresAt`, epoch ms). Plug in a shared store (KV, Redis, a Durable Object) when the
 * service runs on more than one instance; the default lives in memory.
 */
export interface DpopReplayCache {
  use(jti: string, expiresAt: number): boolean | Promise<boolean>;
}

/** An in-memory replay cache of at most `max` jtis (the oldest go first once full, expired ones as they are met). */
export function memoryReplayCache(max = 10_000, now: () => number = Date.now): DpopReplayCache {
  const seen = new Map<string, number>();
  return {
    use(jti, expiresAt) {
      const t = now();
      const until = seen.get(jti);
      if (until !== undefined && until > t) return false;
      seen.delete(jti);
      while (seen.size >= max) {
        const [oldest] = seen.keys();
        seen.delete(oldest!);
      }
      seen.set(jti, expiresAt);
      // Drop a few expired entries per call: the map stays small under steady traffic.
      let n = 0;
      for (const [k, v] of seen) {
        if (n++ > 4) break;
        if (v <= t) seen.delete(k);
      }
      return true;
    },
  };
}

const DPOP_TYP = "dpop+jwt";
/** Asymmetric JWS algorithms (RFC 9449 section 4.2: no MAC, no none). */
const PROOF_ALGS = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA", "Ed25519"];
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "k", "oth"];

/** The URL as `htu` names it: scheme, host and path, no query or fragment (RFC 9449 section 4.3, item 9). */
export function htuOf(url: string): string {
  const u = new URL(url);
  u.search = "";
  u.hash = "";
  return u.href;
}

export async function sha256b64url(text: string): Promise<string> {
  return base64url.encode(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))));
}

/** Checks a DPoP proof against the access token it comes with (`jkt`, its `cnf.jkt`), per RFC 9449 section 4.3. */
export async function checkDpopProof(
  token: string,
  jkt: string,
  request: DpopRequest | undefined,
  options: { now: number; maxAgeSeconds: number; clockTolerance: number; replay: DpopReplayCache },
): Promise<void> {
  const proof = request?.proof;
  if (!proof) throw new KeywardJwtError("dpop_required", "The token is DPoP-bound (cnf.jkt): the request needs a DPoP proof");
  if (proof.includes(",")) throw new KeywardJwtError("dpop_invalid", "Exactly one DPoP proof is allowed");
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    throw new KeywardJwtError("dpop_invalid", "The DPoP proof is not a JWS");
  }
  if (header.typ !== DPOP_TYP) throw new KeywardJwtError("dpop_invalid", `The DPoP proof's typ must be ${DPOP_TYP}`);
  if (typeof header.alg !== "string" || !PROOF_ALGS.includes(header.alg)) throw new KeywardJwtError("dpop_invalid", "The DPoP proof's alg must be an asymmetric algorithm");
  const jwk = header.jwk as JWK | undefined;
  if (typeof jwk !== "object" || jwk === null || PRIVATE_MEMBERS.some((m) => m in jwk)) {
    throw new KeywardJwtError("dpop_invalid", "The DPoP proof's header needs the public key (jwk) and no private key material");
  }
  let payload;
  try {
    const key = await importJWK(jwk, header.alg);
    ({ payload } = await jwtVerify(proof, key, { typ: DPOP_TYP, algorithms: PROOF_ALGS, currentDate: new Date(options.now), clockTolerance: options.clockTolerance }));
  } catch {
    throw new KeywardJwtError("dpop_invalid", "The DPoP proof's signature does not verify against its jwk");
  }
  let thumbprint: string;
  try {
    thumbprint = await calculateJwkThumbprint(jwk, "sha256");
  } catch {
    throw new KeywardJwtError("dpop_invalid", "The DPoP proof's jwk has no thumbprint");
  }
  if (thumbprint !== jkt) throw new KeywardJwtError("dpop_mismatch", "The DPoP proof's key is not the one the token is bound to (cnf.jkt)");
  if (typeof payload.htm !== "string" || payload.htm !== request!.method.toUpperCase()) throw new KeywardJwtError("dpop_mismatch", "The DPoP proof's htm is not the request's method");
  let htu: string;
  try {
    htu = typeof payload.htu === "string" ? htuOf(payload.htu) : "";
  } catch {
    htu = "";
  }
  if (htu !== htuOf(request!.url)) throw new KeywardJwtError("dpop_mismatch", "The DPoP proof's htu is not the request's URL");
  const nowS = options.now / 1000;
  if (typeof payload.iat !== "number") throw new KeywardJwtError("dpop_invalid", "The DPoP proof has no iat");
  if (payload.iat > nowS + options.clockTolerance || payload.iat < nowS - options.maxAgeSeconds - options.clockTolerance) {
    throw new KeywardJwtError("dpop_invalid", `The DPoP proof's iat is outside the accepted window (${options.maxAgeSeconds} s)`);
  }
  if (typeof payload.ath !== "string" || payload.ath !== (await sha256b64url(token))) {
    throw new KeywardJwtError("dpop_mismatch", "The DPoP proof's ath is not the hash of this access token");
  }
  if (typeof payload.jti !== "string" || payload.jti.length === 0 || payload.jti.length > 256) throw new KeywardJwtError("dpop_invalid", "The DPoP proof needs a jti");
  const expiresAt = (payload.iat + options.maxAgeSeconds + options.clockTolerance) * 1000;
  if (!(await options.replay.use(`${thumbprint}:${payload.jti}`, expiresAt))) throw new KeywardJwtError("dpop_replayed", "The DPoP proof was already used");
}
