/**
 * Two independent 32-bit hashes of a string (FNV-1a, and a multiply-xorshift over UTF-16 code
 * units): together a 64-bit key, for tables that keep a hash instead of the string.
 */
export function hashA(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h | 0;
}

/** The second of the two hashes: see {@link hashA}. */
export function hashB(text: string): number {
  let h = 0x9747b28c ^ text.length;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x5bd1e995);
    h ^= h >>> 15;
  }
  return h | 0;
}
