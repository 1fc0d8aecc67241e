import { setFlagsFromString } from 'node:v8';

/**
 * Bounds V8's heap growth: after each full collection the heap may grow to its live size ×
 * (1 + `percent`/100) before the next one, instead of V8's own factor (up to 4× when collections
 * are fast against the allocation rate). V8 reads this flag at every collection, so setting it
 * at start-up works; 0 leaves V8's default.
 */
export function boundHeapGrowth(percent: number): void {
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}
