/**
 * The adaptive idle-timeout model: the default until enough history, the accuracy of its
 * quantile sketch, clamping, forgetting, serialization, and properties over random histories.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { prng } from '../../bench/lib/zipf.ts';
import {
  BINS_PER_DOUBLING,
  DECAY,
  MIN_OBSERVATIONS,
  TimeoutModel,
  type TimeoutSettings,
} from '../../src/sessions/timeout-model.ts';

const SECOND = 1000;
const MINUTE = 60_000;
const HOUR = 3_600_000;

const SETTINGS: TimeoutSettings = {
  defaultMs: 30 * MINUTE,
  minMs: 2 * MINUTE,
  maxMs: 2 * HOUR,
  quantile: 0.95,
  margin: 1.5,
};

/** No clamping, no margin: the timeout is the learned quantile itself. */
const raw = (quantile: number): TimeoutSettings => ({
  defaultMs: 30 * MINUTE,
  minMs: 0,
  maxMs: Number.MAX_SAFE_INTEGER,
  quantile,
  margin: 1,
});

/** A log-normal sampler (Box–Muller) around `median` with log-sd `sigma`. */
function logNormal(random: () => number, median: number, sigma: number): () => number {
  return () => {
    const u = 1 - random();
    const v = random();
    return median * Math.exp(sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
  };
}

/** The exact q-quantile of `gaps` weighted as the model weighs them (the last weighs 1). */
function exactDecayedQuantile(gaps: readonly number[], q: number): number {
  const weighted = gaps.map((gap, j) => ({ gap, weight: DECAY ** (gaps.length - 1 - j) }));
  weighted.sort((a, b) => a.gap - b.gap);
  const total = weighted.reduce((sum, x) => sum + x.weight, 0);
  let cumulative = 0;
  for (const x of weighted) {
    cumulative += x.weight;
    if (cumulative >= q * total) return x.gap;
  }
  return (weighted.at(-1) as { gap: number }).gap;
}

const modelOf = (within: readonly number[], between: readonly number[] = []): TimeoutModel => {
  const model = TimeoutModel.empty();
  for (const gap of within) model.observeWithin(gap);
  for (const gap of between) model.observeBetween(gap);
  return model;
};

describe('TimeoutModel: default', () => {
  it('uses the default until the decayed count reaches MIN_OBSERVATIONS', () => {
    const model = TimeoutModel.empty();
    let n = 0;
    for (;;) {
      const { timeoutMs, basis } = model.timeout(SETTINGS);
      if (basis.withinGaps >= MIN_OBSERVATIONS) break;
      assert.equal(timeoutMs, SETTINGS.defaultMs);
      assert.equal(basis.source, 'default');
      assert.equal(basis.quantileMs, null);
      assert.equal(basis.clamped, null);
      model.observeWithin(40 * SECOND);
      n++;
    }
    // With decay, 5 gaps count 4.80: the sixth makes it learned.
    assert.equal(n, MIN_OBSERVATIONS + 1);
    const { timeoutMs, basis } = model.timeout(SETTINGS);
    assert.equal(basis.source, 'learned');
    assert.ok(basis.quantileMs !== null && basis.quantileMs >= 40 * SECOND);
    assert.equal(timeoutMs, SETTINGS.minMs);
    assert.equal(basis.clamped, 'min');
  });

  it('ignores gaps that are not positive and finite', () => {
    const model = TimeoutModel.empty();
    for (const gap of [0, -5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      for (let k = 0; k < 10; k++) {
        model.observeWithin(gap);
        model.observeBetween(gap);
      }
    }
    assert.equal(model.toJSON(), TimeoutModel.empty().toJSON());
    const { timeoutMs, basis } = model.timeout(SETTINGS);
    assert.equal(timeoutMs, SETTINGS.defaultMs);
    assert.deepEqual(basis, {
      source: 'default',
      withinGaps: 0,
      betweenGaps: 0,
      quantile: 0.95,
      quantileMs: null,
      margin: 1.5,
      clamped: null,
      betweenMedianMs: null,
    });
  });

  it('between-session gaps alone do not make the timeout learned, but report their median', () => {
    const model = modelOf([], [2 * HOUR, 3 * HOUR, 4 * HOUR, 5 * HOUR, 6 * HOUR, 7 * HOUR]);
    const { timeoutMs, basis } = model.timeout(SETTINGS);
    assert.equal(timeoutMs, SETTINGS.defaultMs);
    assert.equal(basis.source, 'default');
    assert.ok(basis.betweenGaps > MIN_OBSERVATIONS);
    const median = basis.betweenMedianMs as number;
    assert.ok(median > 3 * HOUR && median < 6 * HOUR, `median ${median}`);
  });
});

describe('TimeoutModel: quantile sketch', () => {
  it('is within one bin width of the exact (decayed) quantile for log-normal gaps', () => {
    const binWidth = 2 ** (1 / BINS_PER_DOUBLING); // ≈ 1.19
    let checked = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const random = prng(seed);
      const median = 5 * SECOND * 2 ** (seed % 12); // 5 s … ≈ 3 h
      const sample = logNormal(random, median, 0.3 + (seed % 5) * 0.3);
      const gaps = Array.from({ length: 50 + seed * 20 }, sample);
      const model = modelOf(gaps);
      for (const q of [0.5, 0.75, 0.9, 0.95, 0.99]) {
        const exact = exactDecayedQuantile(gaps, q);
        const sketched = model.timeout(raw(q)).basis.quantileMs as number;
        const ratio = sketched / exact;
        assert.ok(
          ratio >= 1 / binWidth - 1e-6 && ratio <= binWidth + 1e-6,
          `seed ${seed}, q ${q}: sketch ${sketched} vs exact ${Math.round(exact)}`,
        );
        assert.ok(Math.abs(ratio - 1) <= 0.2);
        checked++;
      }
    }
    assert.equal(checked, 100);
  });

  it('clamps gaps outside 1 s … 8 days into the end bins', () => {
    const short = modelOf(Array.from({ length: 20 }, () => 10));
    const q = short.timeout(raw(0.5)).basis.quantileMs as number;
    assert.ok(q >= SECOND && q <= 1.2 * SECOND, `${q}`);
    const long = modelOf(Array.from({ length: 20 }, () => 100 * 24 * HOUR));
    const r = long.timeout(raw(0.5)).basis.quantileMs as number;
    assert.ok(r >= 7 * 24 * HOUR && r <= 9 * 24 * HOUR, `${r}`);
  });
});

describe('TimeoutModel: clamping', () => {
  it('clamps to minMs for short gaps and to maxMs for long ones', () => {
    const fast = modelOf(Array.from({ length: 30 }, () => 10 * SECOND));
    const low = fast.timeout(SETTINGS);
    assert.equal(low.timeoutMs, SETTINGS.minMs);
    assert.equal(low.basis.source, 'learned');
    assert.equal(low.basis.clamped, 'min');
    assert.ok((low.basis.quantileMs as number) * 1.5 < SETTINGS.minMs);

    const slow = modelOf(Array.from({ length: 30 }, () => 3 * HOUR));
    const high = slow.timeout(SETTINGS);
    assert.equal(high.timeoutMs, SETTINGS.maxMs);
    assert.equal(high.basis.clamped, 'max');

    const middle = modelOf(Array.from({ length: 30 }, () => 10 * MINUTE));
    const mid = middle.timeout(SETTINGS);
    assert.equal(mid.basis.clamped, null);
    assert.equal(mid.timeoutMs, Math.round((mid.basis.quantileMs as number) * 1.5));
    assert.ok(mid.timeoutMs >= 15 * MINUTE && mid.timeoutMs <= 18 * MINUTE, `${mid.timeoutMs}`);
    assert.ok(Number.isInteger(mid.timeoutMs));
  });
});

describe('TimeoutModel: forgetting', () => {
  const settings: TimeoutSettings = { ...SETTINGS, minMs: SECOND, maxMs: 24 * HOUR };

  it('follows a user who switches from 30 s gaps to 10 min gaps (and back)', () => {
    const random = prng(7);
    const fast = logNormal(random, 30 * SECOND, 0.2);
    const slow = logNormal(random, 10 * MINUTE, 0.2);
    const model = TimeoutModel.empty();
    for (let k = 0; k < 200; k++) model.observeWithin(fast());
    const before = model.timeout(settings).timeoutMs;
    assert.ok(before > 30 * SECOND && before < 2 * MINUTE, `before ${before}`);

    // Longer gaps: the timeout grows within a few of them.
    let grewAfter = -1;
    for (let k = 1; k <= 100; k++) {
      model.observeWithin(slow());
      if (model.timeout(settings).timeoutMs >= 10 * MINUTE) {
        grewAfter = k;
        break;
      }
    }
    assert.ok(grewAfter >= 1 && grewAfter <= 10, `grew after ${grewAfter}`);
    for (let k = 0; k < 100; k++) model.observeWithin(slow());
    const after = model.timeout(settings).timeoutMs;
    assert.ok(after >= 12 * MINUTE && after <= 22 * MINUTE, `after ${after}`);

    // Shorter gaps again: it shrinks only once the long ones weigh less than 1 − q (≈ 150 gaps).
    let shrankAfter = -1;
    for (let k = 1; k <= 200; k++) {
      model.observeWithin(fast());
      if (model.timeout(settings).timeoutMs <= 2 * MINUTE) {
        shrankAfter = k;
        break;
      }
    }
    assert.ok(shrankAfter > 100 && shrankAfter <= 160, `shrank after ${shrankAfter}`);
  });

  it('stays bounded and renormalizes over very long histories', () => {
    const random = prng(11);
    const sample = logNormal(random, MINUTE, 0.5);
    const model = TimeoutModel.empty();
    for (let k = 0; k < 20_000; k++) model.observeWithin(sample());
    const { basis } = model.timeout(settings);
    const limit = 1 / (1 - DECAY);
    assert.ok(basis.withinGaps > limit - 0.01 && basis.withinGaps <= limit, `${basis.withinGaps}`);
    const json = JSON.parse(model.toJSON()) as { w: { s: number } };
    assert.ok(json.w.s >= 1 && json.w.s <= 2 ** 41);
  });
});

describe('TimeoutModel: serialization', () => {
  it('round-trips exactly', () => {
    const random = prng(3);
    const within = logNormal(random, 40 * SECOND, 1);
    const between = logNormal(random, 3 * HOUR, 0.7);
    const model = TimeoutModel.empty();
    for (let k = 0; k < 3000; k++) {
      model.observeWithin(within());
      if (k % 10 === 0) model.observeBetween(between());
      if (k % 250 === 0 || k === 2999) {
        const text = model.toJSON();
        const copy = TimeoutModel.fromJSON(text);
        assert.equal(copy.toJSON(), text);
        for (const quantile of [0.5, 0.9, 0.95, 0.999]) {
          const settings = { ...SETTINGS, quantile };
          assert.deepEqual(copy.timeout(settings), model.timeout(settings));
        }
      }
    }
  });

  it('is compact and versioned', () => {
    const empty = TimeoutModel.empty().toJSON();
    assert.equal(empty, '{"v":1,"w":{"s":1,"h":[]},"b":{"s":1,"h":[]}}');
    const model = modelOf(
      Array.from({ length: 50 }, (_, k) => 20 * SECOND + k * 1000),
      [HOUR],
    );
    const text = model.toJSON();
    assert.ok(text.startsWith('{"v":1,'));
    assert.ok(text.length < 400, `${text.length} characters`);
  });

  it('gives an empty model for missing or malformed input', () => {
    const good = JSON.parse(modelOf([MINUTE, MINUTE, 2 * MINUTE], [HOUR]).toJSON()) as {
      v: number;
      w: { s: number; h: [number, number][] };
      b: { s: number; h: [number, number][] };
    };
    const variant = (change: (copy: typeof good) => unknown): string => {
      const copy = structuredClone(good);
      const result = change(copy);
      return JSON.stringify(result === undefined ? copy : result);
    };
    const bad: (string | null | undefined)[] = [
      null,
      undefined,
      '',
      '{',
      'null',
      '[]',
      '42',
      '"text"',
      '{}',
      variant((c) => {
        c.v = 2;
      }),
      variant((c) => ({ ...c, v: '1' })),
      variant((c) => {
        (c.w.h[0] as [number, number])[1] = -1;
      }),
      variant((c) => {
        (c.b.h[0] as [number, number])[1] = -0.5;
      }),
      variant((c) => {
        (c.w.h[0] as [number, number])[0] = 78;
      }),
      variant((c) => {
        (c.w.h[0] as [number, number])[0] = 1.5;
      }),
      variant((c) => {
        c.w.h.push([...(c.w.h[0] as [number, number])]);
      }),
      variant((c) => {
        c.w.s = 0;
      }),
      variant((c) => {
        c.b.s = -1;
      }),
      variant((c) => ({ ...c, w: null })),
      variant((c) => ({ ...c, b: undefined })),
      variant((c) => ({ ...c, w: { s: 1, h: 'x' } })),
      variant((c) => ({ ...c, w: { s: 1, h: [[1]] } })),
      '{"v":1,"w":{"s":1,"h":[[3,1e999]]},"b":{"s":1,"h":[]}}',
    ];
    const empty = TimeoutModel.empty().toJSON();
    for (const text of bad) {
      const model = TimeoutModel.fromJSON(text);
      assert.equal(model.toJSON(), empty, `input ${String(text)}`);
      assert.equal(model.timeout(SETTINGS).timeoutMs, SETTINGS.defaultMs);
    }
    // The unchanged document parses.
    assert.notEqual(TimeoutModel.fromJSON(JSON.stringify(good)).toJSON(), empty);
  });
});

describe('TimeoutModel: properties', () => {
  const gap = fc.double({ min: 1, max: 1e10, noNaN: true });
  const settingsArb = fc
    .record({
      minMs: fc.integer({ min: 1000, max: 3_600_000 }),
      span: fc.integer({ min: 0, max: 86_400_000 }),
      quantile: fc.double({ min: 0.5, max: 0.999, noNaN: true }),
      margin: fc.double({ min: 1, max: 10, noNaN: true }),
      defaultMs: fc.integer({ min: 1000, max: 604_800_000 }),
    })
    .map(({ minMs, span, ...rest }): TimeoutSettings => ({ minMs, maxMs: minMs + span, ...rest }));

  it('is within [minMs, maxMs], a whole number and never NaN once learned', () => {
    fc.assert(
      fc.property(
        fc.array(gap, { minLength: MIN_OBSERVATIONS + 1, maxLength: 300 }),
        fc.array(gap, { maxLength: 50 }),
        settingsArb,
        (within, between, settings) => {
          const { timeoutMs, basis } = modelOf(within, between).timeout(settings);
          assert.equal(basis.source, 'learned');
          assert.ok(Number.isInteger(timeoutMs));
          assert.ok(timeoutMs >= settings.minMs && timeoutMs <= settings.maxMs);
          assert.ok(basis.quantileMs !== null && Number.isFinite(basis.quantileMs));
          const unclamped = basis.quantileMs * settings.margin;
          if (basis.clamped === null) assert.ok(Math.abs(timeoutMs - unclamped) <= settings.margin);
          if (basis.clamped === 'min') assert.equal(timeoutMs, settings.minMs);
          if (basis.clamped === 'max') assert.equal(timeoutMs, settings.maxMs);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('uses the default below MIN_OBSERVATIONS gaps', () => {
    fc.assert(
      fc.property(
        fc.array(gap, { maxLength: MIN_OBSERVATIONS }),
        fc.array(gap, { maxLength: 50 }),
        settingsArb,
        (within, between, settings) => {
          const { timeoutMs, basis } = modelOf(within, between).timeout(settings);
          assert.equal(timeoutMs, settings.defaultMs);
          assert.equal(basis.source, 'default');
          assert.ok(basis.withinGaps < MIN_OBSERVATIONS);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('is monotone in the margin (and in the quantile)', () => {
    fc.assert(
      fc.property(
        fc.array(gap, { minLength: MIN_OBSERVATIONS + 1, maxLength: 200 }),
        settingsArb,
        fc.double({ min: 1, max: 10, noNaN: true }),
        fc.double({ min: 0.5, max: 0.999, noNaN: true }),
        (within, settings, otherMargin, otherQuantile) => {
          const model = modelOf(within);
          const at = (margin: number, quantile: number): number =>
            model.timeout({ ...settings, margin, quantile }).timeoutMs;
          const [m1, m2] = [settings.margin, otherMargin].sort((a, b) => a - b) as [number, number];
          assert.ok(at(m1, settings.quantile) <= at(m2, settings.quantile));
          const [q1, q2] = [settings.quantile, otherQuantile].sort((a, b) => a - b) as [
            number,
            number,
          ];
          assert.ok(at(settings.margin, q1) <= at(settings.margin, q2));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('round-trips through JSON for any history', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.oneof(gap, fc.constantFrom(0, -1, Number.NaN))), {
          maxLength: 400,
        }),
        settingsArb,
        (events, settings) => {
          const model = TimeoutModel.empty();
          for (const [isWithin, g] of events) {
            if (isWithin) model.observeWithin(g);
            else model.observeBetween(g);
          }
          const text = model.toJSON();
          const copy = TimeoutModel.fromJSON(text);
          assert.equal(copy.toJSON(), text);
          assert.deepEqual(copy.timeout(settings), model.timeout(settings));
        },
      ),
      { numRuns: 200 },
    );
  });
});
