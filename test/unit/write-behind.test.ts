/**
 * The keyed write-behind buffer (write-behind.ts): batches in the order asked for, a timed
 * flush spread over the interval, an explicit flush that hurries it and writes what came since.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WriteBehind, type WriteBehindOptions } from '../../src/util/write-behind.ts';

/** A buffer of numbers whose writes are recorded with their start times. */
function recorder(options: Partial<WriteBehindOptions<number>> = {}) {
  const writes: Array<{ at: number; batch: number[] }> = [];
  const errors: number[] = [];
  const buffer = new WriteBehind<number>({
    intervalMs: 1_000,
    maxBuffered: 1_000_000,
    batchSize: 2,
    write: async (batch) => {
      writes.push({ at: performance.now(), batch });
    },
    onError: (_err, dropped) => errors.push(dropped),
    ...options,
  });
  const fill = (values: number[]) => {
    for (const v of values) buffer.set(String(v), v);
  };
  return { buffer, writes, errors, fill };
}

describe('WriteBehind', () => {
  it('cuts batches in the order of `compare`, else in the order entries came', async () => {
    const sorted = recorder({ compare: (a, b) => a - b });
    sorted.fill([5, 3, 9, 1, 7]);
    await sorted.buffer.flush();
    assert.deepEqual(
      sorted.writes.map((w) => w.batch),
      [[1, 3], [5, 7], [9]],
    );
    const plain = recorder();
    plain.fill([5, 3, 9]);
    await plain.buffer.flush();
    assert.deepEqual(
      plain.writes.map((w) => w.batch),
      [[5, 3], [9]],
    );
  });

  it('spreads a timed flush over its share of the interval, and an explicit one does not', async () => {
    // 4 batches over half of 400 ms: ≈ 50 ms apart (the first at once).
    const paced = recorder({ intervalMs: 400, spread: 0.5 });
    paced.fill([1, 2, 3, 4, 5, 6, 7, 8]);
    paced.buffer.start();
    const started = performance.now();
    await sleep(400 + 300);
    await paced.buffer.stop();
    assert.equal(paced.writes.length, 4);
    const span = (paced.writes[3]?.at ?? 0) - (paced.writes[0]?.at ?? 0);
    assert.ok(span >= 140, `4 batches spread over ≈ 150 ms, not back to back: ${span} ms`);
    assert.ok((paced.writes[0]?.at ?? 0) - started >= 390, 'the first write waits for the timer');

    const now = recorder({ intervalMs: 400, spread: 0.5 });
    now.fill([1, 2, 3, 4, 5, 6, 7, 8]);
    const t0 = performance.now();
    await now.buffer.flush();
    assert.equal(now.writes.length, 4);
    assert.ok(performance.now() - t0 < 100, 'an explicit flush does not pause between batches');
  });

  it('an explicit flush hurries a spread one and also writes what was buffered since', async () => {
    // 10 batches over 0.9 × 2 s: ≈ 180 ms apart, unless hurried.
    const r = recorder({ intervalMs: 2_000, spread: 0.9 });
    r.fill(Array.from({ length: 20 }, (_, i) => i));
    r.buffer.start();
    await sleep(2_050);
    assert.ok(r.writes.length >= 1 && r.writes.length < 10, `paced: ${r.writes.length} written`);
    r.fill([100, 101, 102]);
    const t0 = performance.now();
    await r.buffer.flush();
    const took = performance.now() - t0;
    const all = r.writes.flatMap((w) => w.batch);
    assert.equal(all.length, 23, 'the interval’s entries and the later ones are all written');
    assert.ok(all.includes(102));
    assert.ok(took < 150, `hurried: the pauses end (${took} ms)`);
    assert.equal(r.buffer.size, 0);
    await r.buffer.stop();
  });

  it('reports what a failed write dropped', async () => {
    const r = recorder({
      write: async (batch) => {
        if (batch.includes(3)) throw new Error('store down');
      },
    });
    r.fill([1, 2, 3, 4, 5]);
    await r.buffer.flush();
    assert.deepEqual(r.errors, [3], 'the failed batch and the ones after it');
  });

  it('drop forgets a buffered entry and waits for a write in progress', async () => {
    let release: () => void = () => undefined;
    const r = recorder({
      write: async (batch) => {
        r.writes.push({ at: performance.now(), batch });
        // The first write holds until released: a drop meanwhile must wait for it.
        if (r.writes.length === 1) await new Promise<void>((resolve) => (release = resolve));
      },
    });
    r.fill([1, 2]);
    const inProgress = r.buffer.flush();
    await sleep(5);
    r.fill([3, 4]);
    let dropped = false;
    const drop = r.buffer.drop('3').then(() => (dropped = true));
    await sleep(5);
    assert.equal(dropped, false, 'drop returned before the write in progress ended');
    release();
    await Promise.all([inProgress, drop]);
    await r.buffer.flush();
    assert.deepEqual(
      r.writes.map((w) => w.batch),
      [[1, 2], [4]],
    );
    // Without a write in progress it returns at once.
    r.fill([5]);
    await r.buffer.drop('5');
    await r.buffer.flush();
    assert.equal(r.writes.length, 2);
  });
});
