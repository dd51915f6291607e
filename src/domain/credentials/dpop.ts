import { base64url, calculateJwkThumbprint, decodeProtectedHeader, importJWK, jwtVerify, type JWK, type JWTPayload } from "jose";
import { sha256Hex } from "../../lib/crypto.ts";
import { DomainError } from "../shared/errors.ts";
import type { Ctx } from "../shared/context.ts";
import { isolateState } from "../shared/isolate-state.ts";
import { FOREIGN_JWT_CLOCK_SKEW_SECONDS } from "../signing/jwt.ts";
import { rememberOnce } from "./replay.ts";

/**
 * RFC 9449 DPoP proofs: the one check of a `DPoP` header, at the token endpoint (which binds the
 * JWT it issues to the proof's key, `cnf.jkt`) and on the management API (where a bound JWT is
 * accepted only with a proof of the same key, over that token: `ath`). docs/dpop.md.
 */

/**
 * The proof algorithms accepted (asymmetric only), advertised as `dpop_signing_alg_values_supported`;
 * `Ed25519` is the fully-specified name of EdDSA over Ed25519 (RFC 9864), which some clients sign with.
 */
export const DPOP_SIGNING_ALGS = ["ES256", "EdDSA", "Ed25519", "RS256", "PS256"] as const;
const DPOP_TYP = "dpop+jwt";
/** Members of a JWK that only a private (or symmetric) key has: a proof's `jwk` must carry none. */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
/** Proofs are signed on the client's clock. */
export const DPOP_CLOCK_SKEW_SECONDS = FOREIGN_JWT_CLOCK_SKEW_SECONDS;
const MAX_PROOF_BYTES = 8192;

export interface ProofRequest {
  /** The HTTP method of the request carrying the proof. */
  method: string;
  /** The request's URL as received. */
  url: string;
  /** The access token the proof must be over (`ath`), on a resource request. */
  accessToken?: string | undefined;
}

export interface VerifiedProof {
  /** The RFC 7638 SHA-256 thumbprint of the proof's key (the JWT's `cnf.jkt`). */
  jkt: string;
}

export const invalidProof = (detail: string) => new DomainError("invalid_dpop_proof", `DPoP proof rejected: ${detail}`);

/**
 * RFC 9449 4.3 step 9 (RFC 3986 6.2.2 and 6.2.3): scheme and host lowercase, the default port
 * dropped, no query and no fragment; null when it is not an absolute http(s) URL.
 */
export function normalizeHtu(raw: string): string | null {
  if (!URL.canParse(raw)) return null;
  const url = new URL(raw);
  if (url.protocol !== "https:" && url.protocol !== "http:") return null;
  // URL already lowercases the scheme and host and drops the default port.
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/** The URLs a proof's `htu` may name for a request: the request's own, and the same path under ISSUER (behind a proxy). */
function acceptedHtus(ctx: Ctx, requestUrl: string): string[] {
  const own = normalizeHtu(requestUrl);
  const path = new URL(requestUrl).pathname;
  return [own, normalizeHtu(ctx.config.ISSUER + path)].filter((u): u is string => u !== null);
}

/** base64url(SHA-256(access token)): the `ath` of a proof over that token. */
export function accessTokenHash(token: string): string {
  return base64url.encode(Uint8Array.from(sha256Hex(token).match(/../g)!, (h) => parseInt(h, 16)));
}

/** Imported proof keys by their JWK (a client uses one key for many proofs); at most 1,000 at a time. */
const proofKeys = isolateState("dpop-keys", () => ({ byJwk: new Map<string, Promise<CryptoKey>>() }));

function proofKey(jwk: JWK, alg: string): Promise<CryptoKey> {
  const id = `${alg} ${JSON.stringify(jwk)}`;
  let key = proofKeys.byJwk.get(id);
  if (!key) {
    if (proofKeys.byJwk.size >= 1000) proofKeys.byJwk.clear();
    key = importJWK(jwk, alg) as Promise<CryptoKey>;
    proofKeys.byJwk.set(id, key);
    key.catch(() => proofKeys.byJwk.delete(id));
  }
  return key;
}

// ---- Server nonces (RFC 9449 8): stateless, an HMAC of a time window ----

const nonceKeys = isolateState("dpop-nonce-keys", () => ({ bySecret: new Map<string, Promise<CryptoKey>>() }));

function nonceKey(secret: string): Promise<CryptoKey> {
  let key = nonceKeys.bySecret.get(secret);
  if (!key) {
    const material = new TextEncoder().encode(`keyward dpop-nonce v1\u0000${secret}`);
    key = crypto.subtle.digest("SHA-256", material).then((raw) => crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]));
    nonceKeys.bySecret.set(secret, key);
  }
  return key;
}

async function nonceFor(ctx: Ctx, window: number): Promise<string> {
  const secret = ctx.config.signingSecret;
  if (!secret) throw new DomainError("signing_not_configured", "Set the SIGNING_KEY_ENCRYPTION_KEY secret to use DPoP nonces");
  const mac = await crypto.subtle.sign("HMAC", await nonceKey(secret), new TextEncoder().encode(`window:${window}`));
  return `${window.toString(36)}.${base64url.encode(new Uint8Array(mac).slice(0, 16))}`;
}

const currentWindow = (ctx: Ctx) => Math.floor(ctx.now() / 1000 / ctx.config.DPOP_NONCE_LIFETIME_SECONDS);

/** The nonce to hand out now (the `DPoP-Nonce` header); it is accepted for one to two DPOP_NONCE_LIFETIME_SECONDS. */
export const currentNonce = (ctx: Ctx) => nonceFor(ctx, currentWindow(ctx));

async function isValidNonce(ctx: Ctx, nonce: unknown): Promise<boolean> {
  if (typeof nonce !== "string" || nonce.length > 64) return false;
  const now = currentWindow(ctx);
  for (const window of [now, now - 1]) if (nonce === (await nonceFor(ctx, window))) return true;
  return false;
}

const useNonce = async (ctx: Ctx, detail: string) => new DomainError("use_dpop_nonce", detail, { dpopNonce: await currentNonce(ctx) });

// ---- The proof ----

/**
 * Verifies the `DPoP` header of a request (RFC 9449 4.3): one compact JWT of `typ: dpop+jwt`, an
 * accepted asymmetric `alg`, a public `jwk` it verifies against, `htm` and `htu` naming this
 * request, `iat` within DPOP_PROOF_MAX_AGE_SECONDS (plus the skew), `ath` over the access token on
 * a resource request, the server nonce when DPOP_REQUIRE_NONCE is on, and a `jti` used once
 * (remembered, with the key's thumbprint, for as long as the proof could pass). Throws
 * invalid_dpop_proof, or use_dpop_nonce with a fresh nonce.
 */
export async function verifyDpopProof(ctx: Ctx, header: string | null | undefined, request: ProofRequest): Promise<VerifiedProof> {
  if (!header) throw invalidProof("no DPoP header");
  // Several DPoP headers arrive joined by commas, which a compact JWS never contains.
  if (header.length > MAX_PROOF_BYTES || header.split(".").length !== 3 || header.includes(",")) throw invalidProof("the DPoP header is not one compact JWT");
  let protectedHeader: ReturnType<typeof decodeProtectedHeader>;
  try {
    protectedHeader = decodeProtectedHeader(header);
  } catch {
    throw invalidProof("not a JWT");
  }
  const { typ, alg, jwk } = protectedHeader;
  if (typ !== DPOP_TYP) throw invalidProof(`typ must be ${DPOP_TYP}`);
  if (typeof alg !== "string" || !(DPOP_SIGNING_ALGS as readonly string[]).includes(alg)) throw invalidProof(`alg must be one of ${DPOP_SIGNING_ALGS.join(", ")}`);
  if (!jwk || typeof jwk !== "object" || Array.isArray(jwk)) throw invalidProof("jwk (the public key) is missing from the header");
  if (PRIVATE_MEMBERS.some((m) => m in jwk)) throw invalidProof("jwk carries private key material");
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(header, await proofKey(jwk, alg), { algorithms: [alg], typ: DPOP_TYP, currentDate: new Date(ctx.now()) }));
  } catch {
    throw invalidProof("the signature does not verify against the header's jwk");
  }
  const { jti, htm, htu, iat, ath, nonce } = payload as JWTPayload & { htm?: unknown; htu?: unknown; ath?: unknown; nonce?: unknown };
  if (typeof jti !== "string" || jti.length === 0 || jti.length > 256) throw invalidProof("jti is missing or too long");
  if (htm !== request.method) throw invalidProof(`htm must be ${request.method}`);
  const claimedHtu = typeof htu === "string" ? normalizeHtu(htu) : null;
  if (claimedHtu === null || !acceptedHtus(ctx, request.url).includes(claimedHtu)) throw invalidProof("htu does not name this endpoint");
  const nowS = ctx.now() / 1000;
  const maxAge = ctx.config.DPOP_PROOF_MAX_AGE_SECONDS;
  if (typeof iat !== "number" || !Number.isFinite(iat)) throw invalidProof("iat is missing");
  if (iat > nowS + DPOP_CLOCK_SKEW_SECONDS || iat < nowS - maxAge - DPOP_CLOCK_SKEW_SECONDS) throw invalidProof(`iat is not within ${maxAge} s of now`);
  if (request.accessToken !== undefined) {
    if (typeof ath !== "string") throw invalidProof("ath (the access token's hash) is missing");
    if (ath !== accessTokenHash(request.accessToken)) throw invalidProof("ath does not match the access token");
  }
  if (ctx.config.DPOP_REQUIRE_NONCE && !(await isValidNonce(ctx, nonce))) {
    throw await useNonce(ctx, nonce === undefined ? "Send the DPoP-Nonce value as the proof's nonce" : "The nonce is stale or unknown: use the new DPoP-Nonce value");
  }
  const jkt = await calculateJwkThumbprint(jwk, "sha256");
  // Remembered as long as the proof could pass the iat check.
  const fresh = await rememberOnce(ctx, "dpop", jkt, jti, (iat + maxAge + DPOP_CLOCK_SKEW_SECONDS * 2) * 1000);
  if (!fresh) throw invalidProof("this proof was already used (jti)");
  return { jkt };
}

/** The `cnf.jkt` of a verified JWT, or undefined when it is not bound (a malformed `cnf` reads as bound to nothing). */
export function boundThumbprint(claims: JWTPayload): string | null | undefined {
  const cnf = claims.cnf;
  if (cnf === undefined) return undefined;
  const jkt = cnf && typeof cnf === "object" ? (cnf as { jkt?: unknown }).jkt : undefined;
  return typeof jkt === "string" ? jkt : null;
}
