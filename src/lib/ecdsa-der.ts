/**
 * ECDSA signatures come in two encodings: DER (`SEQUENCE { INTEGER r, INTEGER s }`, what OpenSSL,
 * Go and GitHub's secret scanning send) and IEEE P1363 (`r || s`, each left-padded to the curve's
 * size, what WebCrypto's verify takes). The DER integers are minimal and signed: a leading 0x00
 * when the top bit is set, none when the value is short (a leading zero byte of r or s is dropped).
 */

/** The P1363 form (`size` bytes each for r and s; 32 for P-256) of a DER ECDSA signature, or null when it is not strict DER. */
export function derToP1363(der: Uint8Array, size = 32): Uint8Array | null {
  let at = 0;
  const byte = () => (at < der.length ? der[at++]! : -1);
  if (byte() !== 0x30) return null;
  let length = byte();
  // A long-form length (0x81 nn) only for lengths of 128 and over.
  if (length === 0x81) {
    length = byte();
    if (length < 0x80) return null;
  } else if (length < 0 || length >= 0x80) return null;
  if (at + length !== der.length) return null;
  const out = new Uint8Array(size * 2);
  for (const offset of [0, size]) {
    if (byte() !== 0x02) return null;
    const intLength = byte();
    if (intLength <= 0 || intLength >= 0x80 || at + intLength > der.length) return null;
    let value = der.subarray(at, at + intLength);
    at += intLength;
    // Negative, or a redundant leading zero: not DER.
    if (value[0]! & 0x80) return null;
    if (value.length > 1 && value[0] === 0 && !(value[1]! & 0x80)) return null;
    if (value[0] === 0) value = value.subarray(1);
    if (value.length > size) return null;
    out.set(value, offset + size - value.length);
  }
  return at === der.length ? out : null;
}

/** Standard base64 (with or without padding) to bytes, or null when it is not base64. */
export function base64Bytes(text: string): Uint8Array | null {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(trimmed) || trimmed.length % 4 === 1) return null;
  try {
    return Uint8Array.from(atob(trimmed), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}
