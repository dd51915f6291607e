import { utf8ByteString } from "./text.ts";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const encoder = new TextEncoder();
const ascii = new TextDecoder();
const BASE62_CODES = encoder.encode(BASE62);

/** `length` base62 characters of CSPRNG output, without modulo bias (bytes >= 248 are redrawn). */
export function randomBase62(length: number): string {
  // Char codes into one buffer, one string at the end: a JWT's jti is made per request.
  const out = new Uint8Array(length);
  let n = 0;
  while (n < length) {
    const bytes = crypto.getRandomValues(new Uint8Array(length * 2));
    for (let i = 0; i < bytes.length && n < length; i++) {
      const b = bytes[i]!;
      if (b < 248) out[n++] = BASE62_CODES[b % 62]!;
    }
  }
  return ascii.decode(out);
}

/** Fixed-width base62 of a non-negative integer below 62^width. */
export function toBase62(value: number, width: number): string {
  let out = "";
  let n = value;
  for (let i = 0; i < width; i++) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE) of a string's UTF-8 bytes. */
export function crc32(input: string): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  const bytes = utf8ByteString(input);
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes.charCodeAt(i)) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Lowercase hex of bytes (the runtime's Uint8Array.prototype.toHex, ES2026, not yet in TypeScript's lib). */
export const toHex = (bytes: Uint8Array): string => (bytes as Uint8Array & { toHex(): string }).toHex();

export { sha256Hex } from "./sha256.ts";

/**
 * Constant-time string comparison for secrets compared directly (e.g. the bootstrap secret).
 * Both sides are hashed first so that the comparison length never depends on the input.
 */
export async function timingSafeEqualString(a: string, b: string): Promise<boolean> {
  const [ha, hb] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(a)),
    crypto.subtle.digest("SHA-256", encoder.encode(b)),
  ]);
  return crypto.subtle.timingSafeEqual(ha, hb);
}
