const encoder = new TextEncoder();

/**
 * A string's UTF-8 bytes as a byte string (one char per byte, codes 0-255), for code that walks
 * bytes with `charCodeAt` (CRC-32, SHA-256). Tokens, secrets and the usual claims are ASCII, their
 * own encoding: returned as they are, nothing allocated.
 */
export function utf8ByteString(input: string): string {
  if (/^[\x00-\x7f]*$/.test(input)) return input;
  let bytes = "";
  for (const byte of encoder.encode(input)) bytes += String.fromCharCode(byte);
  return bytes;
}
