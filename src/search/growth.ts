/** Arrays below this many elements double when they grow; bigger ones grow by a quarter. */
const DOUBLE_BELOW = 1_024;

/**
 * The capacity an index array of `capacity` elements grows to so that it holds `needed`. A
 * built index is trimmed to what it holds and then grows by a few memories at a time: doubling
 * would make a big index twice its size for one more memory (and the index cache counts it at
 * that size). Small arrays double, so that a build from empty copies little.
 */
export function grownCapacity(capacity: number, needed: number): number {
  let size = Math.max(1, capacity);
  while (size < needed) size = size < DOUBLE_BELOW ? size * 2 : Math.ceil(size * 1.25);
  return size;
}

/**
 * Whether an array of `capacity` elements holding `used` has more than an eighth of slack (and
 * more than 16): worth a copy that fits it. Within that, the copy costs more than the slack.
 */
export function loose(capacity: number, used: number): boolean {
  return capacity - used > Math.max(16, used / 8);
}

/** The smallest power of two that is at least `n` and at least `min` (a power of two). */
export function powerOfTwoAtLeast(n: number, min: number): number {
  let size = min;
  while (size < n) size *= 2;
  return size;
}
