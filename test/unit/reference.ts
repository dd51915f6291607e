/** Reference implementations written independently of src/, for the unit tests to check against. */

/** CRC-32/IEEE bit by bit over the UTF-8 bytes (no table, no ASCII shortcut). */
export function refCrc32(input: string): number {
  let crc = 0xffffffff;
  for (const byte of new TextEncoder().encode(input)) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
