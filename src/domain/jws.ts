import { base64url } from "jose";
import { utf8ByteString } from "../lib/text.ts";
import type { SigningAlg, SigningKey } from "./signing-keys.ts";

/**
 * The compact JWS of every JWT Keyward issues: the protected header encoded once per key, the
 * payload base64url-encoded, WebCrypto's signature. The bytes are the ones jose's CompactSign
 * produces for the same header and payload (tested, test/unit/jws.test.ts); jose's per-call
 * header serialization, key checks and buffers cost about a tenth of an exchange under load
 * (README, "Performance"), and our keys are imported by us for exactly their algorithm.
 */
const SIGN_PARAMS: Record<SigningAlg, SubtleCryptoSignAlgorithm> = {
  ES256: { name: "ECDSA", hash: "SHA-256" },
  RS256: { name: "RSASSA-PKCS1-v1_5" },
  EdDSA: { name: "Ed25519" },
};

/** `typ` of RFC 9068 access tokens. */
export const ACCESS_TOKEN_TYP = "at+jwt";

const encoder = new TextEncoder();
const ascii = new TextDecoder();
const BASE64URL = encoder.encode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
const encodedHeaders = new Map<string, Uint8Array>();

/** The encoded protected header of a key, with the dot that follows it, as bytes. */
function headerOf(key: Pick<SigningKey, "alg" | "kid">): Uint8Array {
  let header = encodedHeaders.get(key.kid);
  if (header === undefined) {
    // Keys come and go with rotations: a few per isolate lifetime.
    if (encodedHeaders.size >= 64) encodedHeaders.clear();
    header = encoder.encode(`${base64url.encode(JSON.stringify({ alg: key.alg, kid: key.kid, typ: ACCESS_TOKEN_TYP }))}.`);
    encodedHeaders.set(key.kid, header);
  }
  return header;
}

/**
 * The signing input (header, dot, base64url of the payload's bytes, given as a byte string)
 * written straight into one buffer: no intermediate strings, as a JWT is made per request.
 */
function signingInput(header: Uint8Array, payload: string): Uint8Array {
  const n = payload.length;
  const out = new Uint8Array(header.length + Math.ceil((n * 4) / 3));
  out.set(header);
  let o = header.length;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (payload.charCodeAt(i) << 16) | (payload.charCodeAt(i + 1) << 8) | payload.charCodeAt(i + 2);
    out[o++] = BASE64URL[v >> 18]!;
    out[o++] = BASE64URL[(v >> 12) & 63]!;
    out[o++] = BASE64URL[(v >> 6) & 63]!;
    out[o++] = BASE64URL[v & 63]!;
  }
  if (i < n) {
    const v = (payload.charCodeAt(i) << 16) | (i + 1 < n ? payload.charCodeAt(i + 1) << 8 : 0);
    out[o++] = BASE64URL[v >> 18]!;
    out[o++] = BASE64URL[(v >> 12) & 63]!;
    if (i + 1 < n) out[o++] = BASE64URL[(v >> 6) & 63]!;
  }
  return out;
}

/** A compact JWS of `payload` (JSON text) under `key`, signed with `privateKey` (its private half). */
export async function signCompact(key: Pick<SigningKey, "alg" | "kid">, privateKey: CryptoKey, payload: string): Promise<string> {
  const input = signingInput(headerOf(key), utf8ByteString(payload));
  const signature = await crypto.subtle.sign(SIGN_PARAMS[key.alg], privateKey, input);
  return `${ascii.decode(input)}.${base64url.encode(new Uint8Array(signature))}`;
}
