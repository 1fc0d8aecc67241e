/**
 * The sort in steps (sort-in-steps.ts): the order of `Array.prototype.sort` (stable), across
 * runs and merges, and the event loop gets turns while a large sort is under way.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { sortInSteps } from '../../src/util/sort-in-steps.ts';

interface Item {
  key: number;
  /** Where the item was before the sort: equal keys keep this order. */
  at: number;
}

const byKey = (a: Item, b: Item) => a.key - b.key;

describe('sortInSteps', () => {
  it('sorts as Array.prototype.sort does, equal keys in their first order', async () => {
    await fc.assert(
      fc.asyncProperty(
        // Lengths around the run (1,024) and merge sizes; few distinct keys: many ties.
        fc.integer({ min: 0, max: 5_000 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer(),
        async (n, distinct, seed) => {
          let s = seed >>> 0;
          const items: Item[] = Array.from({ length: n }, (_, at) => {
            s = (Math.imul(s, 1_103_515_245) + 12_345) >>> 0;
            return { key: s % distinct, at };
          });
          const expected = [...items].sort(byKey);
          const sorted = await sortInSteps(items, byKey);
          assert.deepEqual(sorted, expected);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('gives the event loop turns while it sorts a large array', async () => {
    const items = Array.from({ length: 20_000 }, (_, at) => ({ key: (at * 7_919) % 20_000, at }));
    let immediates = 0;
    const count = () => {
      immediates++;
      if (!done) setImmediate(count);
    };
    let done = false;
    setImmediate(count);
    const sorted = await sortInSteps(items, byKey);
    done = true;
    assert.deepEqual(
      sorted.map((i) => i.key),
      Array.from({ length: 20_000 }, (_, k) => k),
    );
    // 20 runs and 5 merge levels of 20,000 items: dozens of yields, each lets the
    // interleaved setImmediate chain take a step.
    assert.ok(immediates >= 20, `the loop turned ${immediates} times during the sort`);
  });
});
