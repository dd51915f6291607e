/**
 * SHA-256 (FIPS 180-4) of a string's UTF-8 bytes, computed synchronously and, for ASCII (every
 * token and secret), without allocating a buffer. It hashes each credential on the hot path:
 * WebCrypto's digest costs a promise and runtime objects per call that outlive the request until
 * the next full collection, and lengthen every scavenge until then (docs/performance.md, "The p99 and the garbage collector").
 */
import { utf8ByteString } from "./text.ts";

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const INITIAL = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
// State and schedule, one each per isolate: the function never yields, so no two calls share them.
const H = new Int32Array(8);
const W = new Int32Array(64);
const HEX_CODES = Array.from("0123456789abcdef", (ch) => ch.charCodeAt(0));
// The digest's 64 hex char codes, made into one string at the end (concatenating pieces allocates each).
const OUT: number[] = new Array(64).fill(0);

/** Byte `i` of the padded message (the bytes, 0x80, zeros, the bit length in the last 4 bytes). */
function paddedByte(bytes: string, length: number, total: number, i: number): number {
  if (i < length) return bytes.charCodeAt(i);
  if (i === length) return 0x80;
  const fromEnd = total - 1 - i;
  return fromEnd < 4 ? ((length * 8) >>> (fromEnd * 8)) & 0xff : 0;
}

/** Lowercase hex SHA-256 of a string's UTF-8 bytes (below 512 MiB, so the bit length fits 32 bits). */
export function sha256Hex(input: string): string {
  const bytes = utf8ByteString(input);
  const length = bytes.length;
  if (length >= 0x20000000) throw new RangeError("sha256Hex: input of 512 MiB or more");
  const total = (((length + 8) >> 6) + 1) << 6;
  H.set(INITIAL);
  for (let off = 0; off < total; off += 64) {
    for (let t = 0; t < 16; t++) {
      const j = off + t * 4;
      W[t] = (paddedByte(bytes, length, total, j) << 24) | (paddedByte(bytes, length, total, j + 1) << 16) | (paddedByte(bytes, length, total, j + 2) << 8) | paddedByte(bytes, length, total, j + 3);
    }
    for (let t = 16; t < 64; t++) {
      const w15 = W[t - 15]!;
      const w2 = W[t - 2]!;
      const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
      const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
      W[t] = W[t - 16]! + s0 + W[t - 7]! + s1;
    }
    let a = H[0]!, b = H[1]!, c = H[2]!, d = H[3]!, e = H[4]!, f = H[5]!, g = H[6]!, h = H[7]!;
    for (let t = 0; t < 64; t++) {
      const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (h + s1 + ((e & f) ^ (~e & g)) + K[t]! + W[t]!) | 0;
      const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    H[0] = H[0]! + a;
    H[1] = H[1]! + b;
    H[2] = H[2]! + c;
    H[3] = H[3]! + d;
    H[4] = H[4]! + e;
    H[5] = H[5]! + f;
    H[6] = H[6]! + g;
    H[7] = H[7]! + h;
  }
  for (let i = 0; i < 64; i++) OUT[i] = HEX_CODES[(H[i >> 3]! >>> (28 - 4 * (i & 7))) & 0xf]!;
  return String.fromCharCode.apply(null, OUT);
}
