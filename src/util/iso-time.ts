/** Entries of the table of recent conversions (a power of two). */
const SLOTS = 4096;
const SHIFT = 32 - Math.log2(SLOTS);

const times = new Float64Array(SLOTS).fill(Number.NaN);
const texts = new Array<string>(SLOTS).fill('');

/**
 * `new Date(ms).toISOString()`, remembered: ≈ 0.5 µs a conversion on Node 20, and an answer
 * converts the same times again and again (a memory's creation and update times are mostly
 * equal; the memories of one answer share the time of their last access; a user's popular
 * memories recur from answer to answer). A direct-mapped table of the last 4,096 times
 * converted, by a multiplicative hash of the time's low 32 bits; a hit is an exact match of the
 * number, so a collision only costs a conversion. Invalid times throw as `toISOString` does.
 */
export function isoTime(ms: number): string {
  const slot = Math.imul(ms | 0, 0x9e3779b1) >>> SHIFT;
  if (times[slot] === ms) return texts[slot] as string;
  const text = new Date(ms).toISOString();
  times[slot] = ms;
  texts[slot] = text;
  return text;
}
