import { base64url } from "jose";
import type { SigningAlg, SigningKey } from "./keyset.ts";
import { isolateState } from "../shared/isolate-state.ts";

/**
 * The compact JWS of every JWT Keyward issues: the protected header encoded once per key, the
 * payload base64url-encoded, WebCrypto's signature. The bytes are the ones jose's CompactSign
 * produces for the same header and payload (tested, test/unit/jws.test.ts), without jose's per-call
 * header serialization, key checks and buffers (their cost was measured with `bench:compare`,
 * docs/performance.md, "Hand-rolled code: measured"); our keys are imported by us for exactly
 * their algorithm.
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

interface EncodedHeader {
  /** The protected header, base64url, with the dot that follows it, as bytes. */
  bytes: Uint8Array;
  /** The length of the key's signatures in base64url. */
  signatureChars: number;
}
const headers = isolateState("jws-headers", () => ({ byKid: new Map<string, EncodedHeader>() }));

const base64urlLength = (bytes: number) => Math.ceil((bytes * 4) / 3);

function headerOf(key: Pick<SigningKey, "alg" | "kid">, privateKey: CryptoKey): EncodedHeader {
  let header = headers.byKid.get(key.kid);
  if (header === undefined) {
    // Keys come and go with rotations: a few per isolate lifetime.
    if (headers.byKid.size >= 64) headers.byKid.clear();
    const signatureBytes = key.alg === "RS256" ? (privateKey.algorithm as CryptoKeyRsaKeyAlgorithm).modulusLength / 8 : 64;
    header = {
      bytes: encoder.encode(`${base64url.encode(JSON.stringify({ alg: key.alg, kid: key.kid, typ: ACCESS_TOKEN_TYP }))}.`),
      signatureChars: base64urlLength(signatureBytes),
    };
    headers.byKid.set(key.kid, header);
  }
  return header;
}

/** Writes the base64url of `bytes` into `out` at `o`; returns the offset after it. */
function writeBase64url(out: Uint8Array, o: number, bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[o++] = BASE64URL[v >> 18]!;
    out[o++] = BASE64URL[(v >> 12) & 63]!;
    out[o++] = BASE64URL[(v >> 6) & 63]!;
    out[o++] = BASE64URL[v & 63]!;
  }
  if (i < n) {
    const v = (bytes[i]! << 16) | (i + 1 < n ? bytes[i + 1]! << 8 : 0);
    out[o++] = BASE64URL[v >> 18]!;
    out[o++] = BASE64URL[(v >> 12) & 63]!;
    if (i + 1 < n) out[o++] = BASE64URL[(v >> 6) & 63]!;
  }
  return o;
}

const DOT = 46;

/**
 * A compact JWS of `payload` (JSON as UTF-8) under `key`, signed with `privateKey` (its private
 * half), as ASCII bytes. `payload` is read before this returns (callers reuse its buffer). The
 * whole token is written into one buffer (the signing input, then the dot and the signature): no
 * intermediate strings, as a JWT is made per request, and the endpoints send the bytes as they
 * are.
 */
export function signJws(key: Pick<SigningKey, "alg" | "kid">, privateKey: CryptoKey, payload: Uint8Array): Promise<Uint8Array> {
  const header = headerOf(key, privateKey);
  const inputLength = header.bytes.length + base64urlLength(payload.length);
  const out = new Uint8Array(inputLength + 1 + header.signatureChars);
  out.set(header.bytes);
  writeBase64url(out, header.bytes.length, payload);
  return crypto.subtle.sign(SIGN_PARAMS[key.alg], privateKey, out.subarray(0, inputLength)).then((signed) => {
    const signature = new Uint8Array(signed);
    let jws = out;
    if (base64urlLength(signature.length) !== header.signatureChars) {
      // Never for our keys; a buffer of the exact length rather than a cut signature if it were.
      jws = new Uint8Array(inputLength + 1 + base64urlLength(signature.length));
      jws.set(out.subarray(0, inputLength));
    }
    jws[inputLength] = DOT;
    writeBase64url(jws, inputLength + 1, signature);
    return jws;
  });
}

/** A JWS's bytes as text. */
export const jwsText = (jws: Uint8Array) => ascii.decode(jws);

/** The JWS of a JSON text, as text. */
export const signCompact = async (key: Pick<SigningKey, "alg" | "kid">, privateKey: CryptoKey, payload: string): Promise<string> =>
  jwsText(await signJws(key, privateKey, encoder.encode(payload)));

/**
 * A compact JWS with its own `typ` (a status list token's `statuslist+jwt`): the plain path, for
 * JWTs signed once per list render rather than per request.
 */
export async function signTyped(key: Pick<SigningKey, "alg" | "kid">, privateKey: CryptoKey, typ: string, payload: string): Promise<string> {
  const input = `${base64url.encode(JSON.stringify({ alg: key.alg, kid: key.kid, typ }))}.${base64url.encode(payload)}`;
  const signature = new Uint8Array(await crypto.subtle.sign(SIGN_PARAMS[key.alg], privateKey, encoder.encode(input)));
  return `${input}.${base64url.encode(signature)}`;
}
