/**
 * The ranking signals (BM25 parts, decay, recency, use, importance, similarity), their fusion
 * (weighted sum, reciprocal rank fusion) and the top-k heap.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_WEIGHTS,
  fuseRrf,
  fuseWeighted,
  RRF_K,
  SIGNALS,
  type SignalName,
  type Weights,
} from '../../src/search/fusion.ts';
import {
  bm25Term,
  decay,
  idf,
  importance,
  pinned,
  recency,
  similarity,
  USE_SATURATION,
  usage,
} from '../../src/search/signals.ts';
import { TopK } from '../../src/search/top-k.ts';

const close = (actual: number, wanted: number, epsilon = 1e-12): void =>
  assert.ok(Math.abs(actual - wanted) <= epsilon, `${actual} is not ${wanted}`);

const DAY = 86_400_000;
const BM25 = { k1: 1.2, b: 0.75 };

/** Signal values with every signal at `fill`, then the given ones. */
const values = (
  over: Partial<Record<SignalName, number>> = {},
  fill = 0,
): Record<SignalName, number> => ({
  text: fill,
  vector: fill,
  recency: fill,
  importance: fill,
  pinned: fill,
  use: fill,
  ...over,
});

const weights = (over: Partial<Weights> = {}, fill = 0): Weights => values(over, fill);

describe('idf', () => {
  it('is never negative, even for a term in every document', () => {
    for (const n of [1, 2, 10, 1_000]) {
      for (let df = 0; df <= n; df += Math.max(1, Math.floor(n / 10))) {
        assert.ok(idf(df, n) >= 0, `idf(${df}, ${n})`);
      }
      assert.ok(idf(n, n) > 0);
    }
  });

  it('decreases as the term gets more common', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.nat(), fc.nat(), (n, a, b) => {
        const lo = Math.min(a, b) % (n + 1);
        const hi = Math.max(a, b) % (n + 1);
        const [x, y] = lo <= hi ? [lo, hi] : [hi, lo];
        assert.ok(idf(x, n) >= idf(y, n), `idf(${x}, ${n}) < idf(${y}, ${n})`);
        if (x < y) assert.ok(idf(x, n) > idf(y, n));
        assert.ok(idf(y, n) >= 0);
      }),
      { numRuns: 1_000 },
    );
  });

  it('matches the BM25 formula ln(1 + (n − df + ½) / (df + ½))', () => {
    close(idf(1, 10), Math.log(1 + 9.5 / 1.5));
    close(idf(0, 0), Math.log(2));
  });
});

describe('bm25Term', () => {
  it('grows with the term frequency', () => {
    let previous = 0;
    for (let tf = 1; tf <= 50; tf++) {
      const w = bm25Term(tf, 2, 10, 10, BM25);
      assert.ok(w > previous, `tf ${tf}`);
      previous = w;
    }
  });

  it('saturates below idf × (k1 + 1)', () => {
    const termIdf = 2.5;
    for (const tf of [1, 10, 1_000, 1e9]) {
      assert.ok(bm25Term(tf, termIdf, 10, 10, BM25) < termIdf * (BM25.k1 + 1), `tf ${tf}`);
    }
    close(bm25Term(1e12, termIdf, 10, 10, BM25), termIdf * (BM25.k1 + 1), 1e-9);
  });

  it('is idf at tf 1 for a document of average length', () => {
    close(bm25Term(1, 3, 7, 7, BM25), 3);
  });

  it('decreases with the document length when b > 0', () => {
    let previous = Number.POSITIVE_INFINITY;
    for (const length of [1, 2, 5, 10, 20, 100]) {
      const w = bm25Term(2, 2, length, 10, BM25);
      assert.ok(w < previous, `length ${length}`);
      previous = w;
    }
  });

  it('does not depend on the length when b = 0', () => {
    const p = { k1: 1.2, b: 0 };
    const reference = bm25Term(3, 2, 10, 10, p);
    for (const length of [1, 5, 50, 500]) close(bm25Term(3, 2, length, 10, p), reference);
  });

  it('treats an average length of 0 as no length normalization', () => {
    close(bm25Term(2, 2, 5, 0, BM25), bm25Term(2, 2, 5, 5, { k1: 1.2, b: 0 }));
  });

  it('is 0 for tf 0 and finite for any sane input', () => {
    assert.equal(bm25Term(0, 2, 5, 5, BM25), 0);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000 }),
        fc.double({ min: 0, max: 20, noNaN: true }),
        fc.integer({ min: 1, max: 1_000 }),
        fc.double({ min: 0.5, max: 1_000, noNaN: true }),
        fc.double({ min: 0, max: 3, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (tf, termIdf, length, avg, k1, b) => {
          const w = bm25Term(tf, termIdf, length, avg, { k1, b });
          assert.ok(Number.isFinite(w) && w >= 0, String(w));
          assert.ok(w <= termIdf * (k1 + 1) + 1e-9, String(w));
        },
      ),
      { numRuns: 1_000 },
    );
  });
});

describe('decay', () => {
  const now = 1_000 * DAY;
  it('is 1 at age 0 and for a time in the future', () => {
    assert.equal(decay(now, now, DAY), 1);
    assert.equal(decay(now + DAY, now, DAY), 1);
  });

  it('is ½ after one half-life and ¼ after two', () => {
    close(decay(now - DAY, now, DAY), 0.5);
    close(decay(now - 2 * DAY, now, DAY), 0.25);
  });

  it('is 0 for never (null)', () => {
    assert.equal(decay(null, now, DAY), 0);
  });

  it('stays within [0, 1] and decreases with age', () => {
    fc.assert(
      fc.property(fc.nat({ max: 100 * DAY }), fc.nat({ max: 100 * DAY }), (a, b) => {
        const [young, old] = a <= b ? [a, b] : [b, a];
        const dy = decay(now - young, now, 7 * DAY);
        const dold = decay(now - old, now, 7 * DAY);
        assert.ok(dy >= 0 && dy <= 1 && dold >= 0 && dold <= 1);
        assert.ok(dy >= dold);
      }),
      { numRuns: 500 },
    );
  });
});

describe('recency', () => {
  const now = 1_000 * DAY;
  it('decays from creation when never accessed', () => {
    close(recency(now - DAY, null, now, DAY), 0.5);
  });

  it('takes the later of creation and last access', () => {
    close(recency(now - 3 * DAY, now - DAY, now, DAY), 0.5);
    // An access recorded before the creation (clock skew) does not age the memory.
    close(recency(now - DAY, now - 3 * DAY, now, DAY), 0.5);
    assert.equal(recency(now - 3 * DAY, now, now, DAY), 1);
  });
});

describe('usage', () => {
  it('is 0 without accesses (and for a negative count)', () => {
    assert.equal(usage(0), 0);
    assert.equal(usage(-5), 0);
  });

  it('is 1 at USE_SATURATION accesses and beyond', () => {
    close(usage(USE_SATURATION), 1);
    assert.equal(usage(USE_SATURATION * 10), 1);
    assert.equal(usage(Number.MAX_SAFE_INTEGER), 1);
  });

  it('is strictly between 0 and 1 before saturation', () => {
    for (const n of [1, 2, 10, USE_SATURATION - 1]) {
      const u = usage(n);
      assert.ok(u > 0 && u < 1, `usage(${n}) = ${u}`);
    }
  });

  it('never decreases with the access count', () => {
    fc.assert(
      fc.property(fc.nat({ max: 10_000 }), fc.nat({ max: 10_000 }), (a, b) => {
        const [x, y] = a <= b ? [a, b] : [b, a];
        assert.ok(usage(x) <= usage(y));
      }),
      { numRuns: 500 },
    );
  });
});

describe('importance, pinned, similarity', () => {
  it('importance clamps to [0, 1]', () => {
    assert.equal(importance(-0.5), 0);
    assert.equal(importance(0), 0);
    assert.equal(importance(0.25), 0.25);
    assert.equal(importance(1), 1);
    assert.equal(importance(7), 1);
  });

  it('pinned is 1 or 0', () => {
    assert.equal(pinned(true), 1);
    assert.equal(pinned(false), 0);
  });

  it('similarity clamps negative cosines to 0 and keeps positive ones', () => {
    assert.equal(similarity(-1), 0);
    assert.equal(similarity(-0.2), 0);
    assert.equal(similarity(0), 0);
    assert.equal(similarity(0.7), 0.7);
    assert.equal(similarity(1), 1);
    assert.equal(similarity(1.0000001), 1);
  });
});

describe('fuseWeighted', () => {
  it('is the weighted sum of the signal values', () => {
    const v = { text: 0.8, vector: 0.6, recency: 0.5, importance: 0.3, pinned: 1, use: 0.25 };
    const wanted =
      DEFAULT_WEIGHTS.text * 0.8 +
      DEFAULT_WEIGHTS.vector * 0.6 +
      DEFAULT_WEIGHTS.recency * 0.5 +
      DEFAULT_WEIGHTS.importance * 0.3 +
      DEFAULT_WEIGHTS.pinned * 1 +
      DEFAULT_WEIGHTS.use * 0.25;
    close(fuseWeighted(v, DEFAULT_WEIGHTS), wanted);
  });

  it('is 0 with zero weights and ignores signals weighted 0', () => {
    assert.equal(fuseWeighted(values({}, 1), weights()), 0);
    close(fuseWeighted(values({ text: 0.5 }, 1), weights({ text: 2 })), 1);
  });

  it('equals Σ weight × value for any values and weights', () => {
    const unit = fc.double({ min: 0, max: 1, noNaN: true });
    const weight = fc.double({ min: 0, max: 10, noNaN: true });
    const record = <T>(arb: fc.Arbitrary<T>) =>
      fc.record(Object.fromEntries(SIGNALS.map((s) => [s, arb])) as Record<SignalName, typeof arb>);
    fc.assert(
      fc.property(record(unit), record(weight), (v, w) => {
        let sum = 0;
        for (const s of SIGNALS) sum += v[s] * w[s];
        close(fuseWeighted(v, w), sum, 1e-9);
      }),
      { numRuns: 500 },
    );
  });
});

describe('fuseRrf', () => {
  it('gives a candidate first in every weighted signal Σ w / (RRF_K + 1)', () => {
    const w = { text: 1, vector: 0.5, recency: 0.1, importance: 0.3, pinned: 0.2, use: 0.05 };
    const scores = fuseRrf([values({}, 0.2), values({}, 0.9), values({}, 0.5)], w);
    let wanted = 0;
    for (const s of SIGNALS) wanted += w[s] / (RRF_K + 1);
    close(scores[1] as number, wanted);
    let second = 0;
    for (const s of SIGNALS) second += w[s] / (RRF_K + 2);
    close(scores[2] as number, second);
    assert.ok((scores[1] as number) > (scores[2] as number));
    assert.ok((scores[2] as number) > (scores[0] as number));
  });

  it('returns scores in the order of the input', () => {
    const scores = fuseRrf(
      [values({ text: 0.1 }), values({ text: 0.3 }), values({ text: 0.2 })],
      weights({ text: 1 }),
    );
    assert.equal(scores.length, 3);
    close(scores[1] as number, 1 / (RRF_K + 1));
    close(scores[2] as number, 1 / (RRF_K + 2));
    close(scores[0] as number, 1 / (RRF_K + 3));
  });

  it('does not score a candidate on a signal whose value is 0', () => {
    const scores = fuseRrf(
      [values({ text: 0.5 }), values({ text: 0, importance: 0.4 })],
      weights({ text: 1, importance: 1 }),
    );
    close(scores[0] as number, 1 / (RRF_K + 1));
    close(scores[1] as number, 1 / (RRF_K + 1));
    assert.deepEqual(fuseRrf([values(), values()], DEFAULT_WEIGHTS), [0, 0]);
  });

  it('ignores signals weighted 0, whatever their values', () => {
    const scores = fuseRrf(
      [values({ text: 0.1, recency: 1 }), values({ text: 0.9, recency: 0.1 })],
      weights({ text: 1 }),
    );
    close(scores[0] as number, 1 / (RRF_K + 2));
    close(scores[1] as number, 1 / (RRF_K + 1));
    assert.deepEqual(fuseRrf([values({}, 1)], weights()), [0]);
  });

  it('is empty for no candidates', () => {
    assert.deepEqual(fuseRrf([], DEFAULT_WEIGHTS), []);
  });

  it('gives every candidate a score in [0, Σ w / (RRF_K + 1)]', () => {
    const unit = fc.double({ min: 0, max: 1, noNaN: true });
    const row = fc.record(
      Object.fromEntries(SIGNALS.map((s) => [s, unit])) as Record<SignalName, typeof unit>,
    );
    fc.assert(
      fc.property(fc.array(row, { maxLength: 30 }), (rows) => {
        let most = 0;
        for (const s of SIGNALS) most += DEFAULT_WEIGHTS[s] / (RRF_K + 1);
        const scores = fuseRrf(rows, DEFAULT_WEIGHTS);
        assert.equal(scores.length, rows.length);
        for (const score of scores) assert.ok(score >= 0 && score <= most + 1e-12, String(score));
      }),
      { numRuns: 300 },
    );
  });
});

/** The k best by score, ties toward the higher slot: what TopK must return. */
function sortAndSlice(
  entries: Array<{ slot: number; score: number }>,
  k: number,
): Array<{ slot: number; score: number }> {
  return [...entries].sort((a, b) => b.score - a.score || b.slot - a.slot).slice(0, Math.max(0, k));
}

/** Offers each score with its position as the slot. */
function offerAll(top: TopK, scores: number[]): void {
  for (const [slot, score] of scores.entries()) top.offer(slot, score);
}

describe('TopK', () => {
  it('returns the k best, best first', () => {
    const top = new TopK(3);
    offerAll(top, [5, 1, 9, 3, 7, 2]);
    assert.deepEqual(top.sorted(), [
      { slot: 2, score: 9 },
      { slot: 4, score: 7 },
      { slot: 0, score: 5 },
    ]);
  });

  it('returns everything offered when fewer than k', () => {
    const top = new TopK(10);
    top.offer(3, 0.5);
    top.offer(1, 0.75);
    assert.deepEqual(top.sorted(), [
      { slot: 1, score: 0.75 },
      { slot: 3, score: 0.5 },
    ]);
  });

  it('breaks ties toward the higher slot, whatever the offer order', () => {
    const top = new TopK(2);
    for (const slot of [4, 9, 1, 7]) top.offer(slot, 1);
    assert.deepEqual(top.sorted(), [
      { slot: 9, score: 1 },
      { slot: 7, score: 1 },
    ]);
    const reversed = new TopK(2);
    for (const slot of [7, 1, 9, 4]) reversed.offer(slot, 1);
    assert.deepEqual(reversed.sorted(), top.sorted());
  });

  it('returns nothing for k = 0 (or a negative k)', () => {
    for (const k of [0, -1]) {
      const top = new TopK(k);
      top.offer(1, 10);
      top.offer(2, 20);
      assert.deepEqual(top.sorted(), []);
    }
  });

  it('returns nothing when nothing is offered', () => {
    assert.deepEqual(new TopK(5).sorted(), []);
  });

  it('handles negative and zero scores', () => {
    const top = new TopK(2);
    offerAll(top, [-1, 0, -5, -0.5]);
    assert.deepEqual(top.sorted(), [
      { slot: 1, score: 0 },
      { slot: 3, score: -0.5 },
    ]);
  });

  it('equals sort-and-slice on random arrays (with many ties)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -5, max: 5 }), { maxLength: 200 }),
        fc.integer({ min: 0, max: 40 }),
        fc.boolean(),
        (scores, k, shuffled) => {
          const entries = scores.map((score, slot) => ({ slot, score }));
          const offered = shuffled ? [...entries].reverse() : entries;
          const top = new TopK(k);
          for (const e of offered) top.offer(e.slot, e.score);
          assert.deepEqual(top.sorted(), sortAndSlice(entries, k));
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('equals sort-and-slice for arbitrary doubles and offer orders', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.nat({ max: 10_000 }), { maxLength: 100 }).chain((slots) =>
          fc.tuple(
            fc.constant(slots),
            fc.array(fc.double({ noNaN: true }), {
              minLength: slots.length,
              maxLength: slots.length,
            }),
          ),
        ),
        fc.integer({ min: 0, max: 120 }),
        ([slots, scores], k) => {
          const entries = slots.map((slot, i) => ({ slot, score: (scores[i] as number) + 0 }));
          const top = new TopK(k);
          for (const e of entries) top.offer(e.slot, e.score);
          assert.deepEqual(top.sorted(), sortAndSlice(entries, k));
        },
      ),
      { numRuns: 1_000 },
    );
  });
});
