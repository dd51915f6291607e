const encoder = new TextEncoder();

/**
 * A string's UTF-8 bytes as a byte string (one char per byte, codes 0-255), for code that walks
 * bytes with `charCodeAt` (CRC-32, SHA-256, base64url). Tokens, secrets and the usual claims are
 * ASCII, their own encoding: returned as they are, nothing allocated.
 */
export function utf8ByteString(input: string): string {
  if (/^[\x00-\x7f]*$/.test(input)) return input;
  let bytes = "";
  for (const byte of encoder.encode(input)) bytes += String.fromCharCode(byte);
  return bytes;
}

/**
 * One buffer of UTF-8: `before`, the bytes `middle`, `after`. A JSON body around a token the
 * endpoints have as bytes (src/domain/jws.ts), so that no string of the token is made per request.
 */
export function framed(before: string, middle: Uint8Array, after: string): Uint8Array {
  const head = utf8ByteString(before);
  const tail = utf8ByteString(after);
  const out = new Uint8Array(head.length + middle.length + tail.length);
  for (let i = 0; i < head.length; i++) out[i] = head.charCodeAt(i);
  out.set(middle, head.length);
  const o = head.length + middle.length;
  for (let i = 0; i < tail.length; i++) out[o + i] = tail.charCodeAt(i);
  return out;
}
