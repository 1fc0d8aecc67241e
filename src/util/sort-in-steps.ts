import { yieldToLoop } from './yield.ts';

/** Items sorted in one step before the merges (≈ 0.5 ms of string comparisons). */
const RUN = 1024;
/** Items merged between two turns of the event loop (≈ 1 ms). */
const MERGE_STEP = 8192;

/**
 * Sorts `items` like `items.sort(compare)` (stable), in steps of about a millisecond with a
 * turn of the event loop between them: a bottom-up merge sort over sorted runs. A buffer of
 * 28,000 access deltas sorted at once held the loop for 16–50 ms, and every request that came
 * meanwhile waited. Sorts `items` in place when it fits in one run; otherwise returns a new
 * array and leaves `items` in an unspecified order. `compare` must not depend on anything that
 * changes while the sort yields.
 */
export async function sortInSteps<T>(items: T[], compare: (a: T, b: T) => number): Promise<T[]> {
  const n = items.length;
  if (n <= RUN) return items.sort(compare);
  for (let lo = 0; lo < n; lo += RUN) {
    const run = items.slice(lo, lo + RUN).sort(compare);
    for (let i = 0; i < run.length; i++) items[lo + i] = run[i] as T;
    await yieldToLoop();
  }
  let from = items;
  let to = new Array<T>(n);
  let budget = MERGE_STEP;
  for (let width = RUN; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo;
      let j = mid;
      for (let k = lo; k < hi; k++) {
        // Ties take the left run's item first: the sort stays stable.
        if (j >= hi || (i < mid && compare(from[i] as T, from[j] as T) <= 0))
          to[k] = from[i++] as T;
        else to[k] = from[j++] as T;
        if (--budget === 0) {
          budget = MERGE_STEP;
          await yieldToLoop();
        }
      }
    }
    [from, to] = [to, from];
  }
  return from;
}
