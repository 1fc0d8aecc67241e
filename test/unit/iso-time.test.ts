/**
 * The remembered ISO-8601 conversion (iso-time.ts): the same text as `toISOString` for every
 * time, through hits, misses and times that share a table position, and the same errors.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isoTime } from '../../src/util/iso-time.ts';

/** The range `Date` accepts: ±8.64e15 ms around the epoch. */
const time = fc.integer({ min: -8.64e15, max: 8.64e15 });

describe('isoTime', () => {
  it('gives what toISOString gives, asked in any order and again', () => {
    fc.assert(
      fc.property(
        fc.array(time, { maxLength: 200 }),
        fc.array(fc.nat(), { maxLength: 400 }),
        (ts, picks) => {
          for (const t of ts) assert.equal(isoTime(t), new Date(t).toISOString());
          // Asked again, in another order: hits, or misses after another time took the position.
          for (const p of picks) {
            if (ts.length === 0) break;
            const t = ts[p % ts.length] as number;
            assert.equal(isoTime(t), new Date(t).toISOString());
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('tells apart times that share a table position (same low 32 bits)', () => {
    const base = Date.UTC(2026, 10, 28, 12, 0, 0, 123);
    const others = [base + 2 ** 32, base - 2 ** 32, base + 2 ** 33];
    for (let round = 0; round < 3; round++) {
      assert.equal(isoTime(base), '2026-11-28T12:00:00.123Z');
      for (const t of others) assert.equal(isoTime(t), new Date(t).toISOString());
    }
  });

  it('gives 0 and -0 the same text, and throws for times Date cannot show', () => {
    assert.equal(isoTime(-0), '1970-01-01T00:00:00.000Z');
    assert.equal(isoTime(0), '1970-01-01T00:00:00.000Z');
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 8.64e15 + 1, -8.64e15 - 1]) {
      assert.throws(() => isoTime(bad), RangeError);
      // Nothing was remembered for it.
      assert.throws(() => isoTime(bad), RangeError);
    }
  });
});
