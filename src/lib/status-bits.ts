/**
 * The status list encoding of draft-ietf-oauth-status-list with 1 bit per token: bit `i` is bit
 * `i % 8` (least significant first) of byte `floor(i / 8)`; the byte array travels as the
 * base64url of its DEFLATE compression in the zlib format (RFC 1950), which is what
 * CompressionStream("deflate") writes.
 */

/** A byte array of `bits` bits (a multiple of 8) with the given bit positions set (out-of-range ones ignored). */
export function statusBits(bits: number, set: Iterable<number>): Uint8Array {
  const bytes = new Uint8Array(Math.ceil(bits / 8));
  for (const i of set) if (i >= 0 && i < bits) bytes[i >> 3]! |= 1 << (i & 7);
  return bytes;
}

/** DEFLATE in the zlib format (RFC 1950). */
export async function zlibDeflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** Base64url without padding (RFC 4648 section 5). */
export function base64urlEncode(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += BASE64URL[v >> 18]! + BASE64URL[(v >> 12) & 63]! + BASE64URL[(v >> 6) & 63]! + BASE64URL[v & 63]!;
  }
  if (i < bytes.length) {
    const v = (bytes[i]! << 16) | (i + 1 < bytes.length ? bytes[i + 1]! << 8 : 0);
    out += BASE64URL[v >> 18]! + BASE64URL[(v >> 12) & 63]!;
    if (i + 1 < bytes.length) out += BASE64URL[(v >> 6) & 63]!;
  }
  return out;
}

/** The `lst` of a status list: base64url(zlib(bits)). */
export async function encodeStatusList(bits: number, set: Iterable<number>): Promise<string> {
  return base64urlEncode(await zlibDeflate(statusBits(bits, set)));
}
