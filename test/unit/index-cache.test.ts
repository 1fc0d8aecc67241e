/**
 * IndexCache: the byte-bounded cache of per-user search indexes, its frequency-based admission
 * (a rarely wanted user's index never pushes out a busier user's) and its size estimate.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { answeredRows } from '../../src/search/answered-rows.ts';
import { DEFAULT_BYTES_PER_MEMORY, IndexCache } from '../../src/search/index-cache.ts';
import { UserIndex } from '../../src/search/user-index.ts';
import { memoryRow } from '../helpers/rows.ts';

/** An index of `n` memories of one user, at version 1. */
function indexOf(user: string, n: number): UserIndex {
  const index = new UserIndex(1);
  for (let i = 0; i < n; i++) {
    index.upsert(memoryRow({ id: `${user}-${i}`, userId: user, content: `note ${i} of ${user}` }));
  }
  return index;
}

describe('IndexCache: admission', () => {
  const one = indexOf('a', 20);
  // Room for two indexes of this size, not three.
  const budget = Math.floor(one.bytes * 2.5);

  it('admits whatever fits in the free space', () => {
    const cache = new IndexCache(budget);
    assert.equal(cache.admits('u:a', one.bytes), true);
    cache.set('u:a', one);
    assert.equal(cache.admits('u:b', one.bytes), true);
    assert.equal(cache.counters.refused, 0);
  });

  it('refuses an index that would push out a busier user, admits a busier one', () => {
    const cache = new IndexCache(budget);
    cache.set('u:a', indexOf('a', 20));
    cache.set('u:b', indexOf('b', 20));
    for (let i = 0; i < 5; i++) cache.want('u:a');
    for (let i = 0; i < 5; i++) cache.want('u:b');
    // Wanted once: both held indexes are wanted more.
    cache.want('u:c');
    assert.equal(cache.admits('u:c', one.bytes), false);
    assert.equal(cache.counters.refused, 1);
    // Wanted more than the least recently used one (a): admitted in its place.
    for (let i = 0; i < 9; i++) cache.want('u:c');
    assert.equal(cache.admits('u:c', one.bytes), true);
    cache.set('u:c', indexOf('c', 20));
    assert.equal(cache.get('u:a', 1), undefined);
    assert.ok(cache.get('u:b', 1));
    assert.ok(cache.get('u:c', 1));
  });

  it('never admits an index larger than the whole budget', () => {
    const cache = new IndexCache(budget);
    for (let i = 0; i < 100; i++) cache.want('u:big');
    assert.equal(cache.admits('u:big', budget + 1), false);
  });

  it('lets old popularity fade: counts halve every 10,000 wants', () => {
    const cache = new IndexCache(budget);
    cache.set('u:a', indexOf('a', 20));
    cache.set('u:b', indexOf('b', 20));
    for (let i = 0; i < 8; i++) cache.want('u:a');
    for (let i = 0; i < 8; i++) cache.want('u:b');
    // 10,000 wants of other users (each once): a and b fall from 8 to 4, the others to 0.
    for (let i = 0; i < 10_000 - 16; i++) cache.want(`u:other${i}`);
    for (let i = 0; i < 5; i++) cache.want('u:c');
    assert.equal(cache.admits('u:c', one.bytes), true);
  });

  it('admits everything when there is no budget (indexes are built per use)', () => {
    const cache = new IndexCache(0);
    assert.equal(cache.admits('u:a', 10 ** 9), true);
  });
});

describe('IndexCache: estimate', () => {
  it('follows the bytes per memory of recent builds, big ones weighing most', () => {
    const cache = new IndexCache(10 ** 9);
    // Before any build: the default bytes per memory.
    assert.equal(cache.estimate(10), 10 * DEFAULT_BYTES_PER_MEMORY);
    const big = indexOf('a', 1_000);
    const perMemory = big.bytes / big.docCount;
    // A tiny index barely moves it.
    cache.set('u:tiny', indexOf('t', 2));
    assert.ok(
      Math.abs(cache.estimate(1) - DEFAULT_BYTES_PER_MEMORY) < 0.01 * DEFAULT_BYTES_PER_MEMORY,
    );
    // Big builds pull it to their bytes per memory (a fifth of the way each).
    for (let i = 0; i < 30; i++) cache.set(`u:${i}`, big);
    const off = Math.abs(cache.estimate(1_000) - big.bytes) / big.bytes;
    assert.ok(off < 0.02, `estimate ${cache.estimate(1_000)} vs ${big.bytes}`);
    assert.ok(
      Math.abs(perMemory - DEFAULT_BYTES_PER_MEMORY) > 100,
      'the test index must differ from the default',
    );
  });
});

describe('IndexCache: writes', () => {
  it('counts a held index at its size after a write applied in place (and evicts for it)', () => {
    const index = indexOf('a', 200);
    index.trim();
    const cache = new IndexCache(10 ** 9);
    cache.set('u:a', index);
    const before = cache.stats.bytes;
    const row = memoryRow({ id: 'a-new', userId: 'a', content: 'one more note', version: 1 });
    cache.afterWrite('u:a', [row], { version: 2, previous: 1, contiguous: true });
    assert.ok(index.bytes > before, 'a write into a trimmed index grows it');
    assert.equal(cache.stats.bytes, index.bytes);
    assert.equal(cache.get('u:a', 2), index);
    // A budget that holds both before the write, only the grown index after: the other goes.
    const small = indexOf('b', 1);
    const budget = index.bytes + Math.floor(small.bytes / 2);
    assert.ok(before + small.bytes <= budget);
    const tight = new IndexCache(budget);
    const held = indexOf('a', 200);
    held.trim();
    tight.set('u:b', small);
    tight.set('u:a', held);
    assert.equal(tight.get('u:b', 1), small);
    tight.afterWrite('u:a', [row], { version: 2, previous: 1, contiguous: true });
    assert.equal(tight.get('u:b', 1), undefined);
    assert.equal(tight.get('u:a', 2), held);
    assert.ok(tight.stats.bytes <= budget);
  });
});

describe('IndexCache: indexes it lets go of', () => {
  /** Answers every memory of the index twice (a row is held from its second answer). */
  const answerAll = (index: UserIndex) => {
    for (let round = 0; round < 2; round++) for (let s = 0; s < index.slots; s++) index.row(s);
  };
  const held = (user: string) => answeredRows.heldOf('acme', user);

  it('retires an index dropped, evicted or replaced: a search still holding it holds no rows', () => {
    const cache = new IndexCache(10 ** 9);
    const dropped = indexOf('retired-drop', 5);
    cache.set('u:drop', dropped);
    // No version move known (as at an erasure): dropped.
    cache.afterWrite('u:drop', [], undefined);
    answerAll(dropped);
    assert.equal(held('retired-drop'), 0);

    const first = indexOf('retired-replaced', 5);
    cache.set('u:replaced', first);
    cache.set('u:replaced', indexOf('retired-replaced', 5));
    answerAll(first);
    assert.equal(held('retired-replaced'), 0);

    const evicted = indexOf('retired-evicted', 5);
    const kept = indexOf('kept-after-eviction', 5);
    const small = new IndexCache(Math.floor(evicted.bytes * 1.5));
    small.set('u:evicted', evicted);
    small.set('u:kept', kept);
    assert.equal(small.get('u:evicted', 1), undefined);
    answerAll(evicted);
    answerAll(kept);
    assert.equal(held('retired-evicted'), 0);
    assert.equal(held('kept-after-eviction'), 5, 'a held index holds its answered rows');
  });

  it('does not retire an index a write was applied to in place (set again for its size)', () => {
    const cache = new IndexCache(10 ** 9);
    const index = indexOf('updated-in-place', 5);
    cache.set('u:updated', index);
    const row = memoryRow({ id: 'updated-in-place-new', userId: 'updated-in-place', content: 'x' });
    cache.afterWrite('u:updated', [row], { version: 2, previous: 1, contiguous: true });
    assert.equal(cache.get('u:updated', 2), index);
    answerAll(index);
    assert.equal(held('updated-in-place'), 6);
  });
});
