/** 32-bit FNV-1a of a string's UTF-16 code units: a cheap, stable spread (not a digest: anyone can aim at a value). */
export function fnv1a(input: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < input.length; i++) {
    hash ^= input.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
