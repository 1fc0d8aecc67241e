/** Cosine similarity and normalization: identities, edge cases, range and symmetry. */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { cosine, normalize } from '../../src/search/vector.ts';

const v = (...values: number[]): Float32Array => new Float32Array(values);
const close = (actual: number, wanted: number, epsilon = 1e-6): void =>
  assert.ok(Math.abs(actual - wanted) <= epsilon, `${actual} is not ${wanted}`);

/** Exact 32-bit floats in [-1000, 1000], none so small that scaling rounds it to zero. */
const moderate = fc.integer({ min: -8000, max: 8000 }).map((i) => i / 8);

/** Vectors of one dimension pair: finite 32-bit floats, any sign and magnitude. */
const pairArb = fc.integer({ min: 1, max: 64 }).chain((n) => {
  const vec = fc.float32Array({ minLength: n, maxLength: n, noNaN: true, noDefaultInfinity: true });
  return fc.tuple(vec, vec);
});

describe('cosine', () => {
  it('is 1 for a vector with itself and with a positive multiple', () => {
    close(cosine(v(1, 2, 3), v(1, 2, 3)), 1);
    close(cosine(v(1, 2, 3), v(2, 4, 6)), 1);
    close(cosine(v(-0.3, 0.1, 7), v(-0.3, 0.1, 7)), 1);
  });

  it('is -1 for opposite vectors', () => {
    close(cosine(v(1, 2, 3), v(-1, -2, -3)), -1);
  });

  it('is 0 for orthogonal vectors', () => {
    assert.equal(cosine(v(1, 0), v(0, 1)), 0);
    assert.equal(cosine(v(1, 1, 0), v(1, -1, 5)), 0);
  });

  it('is 0 when either vector is all zeros', () => {
    assert.equal(cosine(v(0, 0, 0), v(1, 2, 3)), 0);
    assert.equal(cosine(v(1, 2, 3), v(0, 0, 0)), 0);
    assert.equal(cosine(v(0, 0), v(0, 0)), 0);
  });

  it('is 0 when the dimensions differ or the vectors are empty', () => {
    assert.equal(cosine(v(1, 2, 3), v(1, 2)), 0);
    assert.equal(cosine(v(), v()), 0);
  });

  it('is 0 when a vector holds NaN or an infinity', () => {
    assert.equal(cosine(v(Number.NaN, 1), v(1, 1)), 0);
    assert.equal(cosine(v(Number.POSITIVE_INFINITY, 1), v(1, 1)), 0);
  });

  it('stays within [-1, 1] for any finite vectors', () => {
    fc.assert(
      fc.property(pairArb, ([a, b]) => {
        const c = cosine(a, b);
        assert.ok(Number.isFinite(c) && c >= -1 && c <= 1, String(c));
      }),
      { numRuns: 2_000 },
    );
  });

  it('is symmetric', () => {
    fc.assert(
      fc.property(pairArb, ([a, b]) => {
        assert.equal(cosine(a, b), cosine(b, a));
      }),
      { numRuns: 2_000 },
    );
  });

  it('does not change with positive scaling', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(moderate, moderate), { minLength: 1, maxLength: 32 }),
        fc.float({ min: Math.fround(0.01), max: 100, noNaN: true }),
        (pairs, k) => {
          const a = new Float32Array(pairs.map(([x]) => x));
          const b = new Float32Array(pairs.map(([, y]) => y));
          const scaled = new Float32Array(a.map((x) => x * k));
          close(cosine(scaled, b), cosine(a, b), 1e-4);
        },
      ),
    );
  });
});

describe('normalize', () => {
  it('scales to unit length without changing the input', () => {
    const input = v(3, 4);
    const unit = normalize(input);
    close(unit[0] ?? Number.NaN, 0.6);
    close(unit[1] ?? Number.NaN, 0.8);
    assert.deepEqual([...input], [3, 4]);
  });

  it('leaves a zero vector as zeros', () => {
    assert.deepEqual([...normalize(v(0, 0, 0))], [0, 0, 0]);
  });

  it('keeps the cosine, which becomes the dot product', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(moderate, moderate), { minLength: 1, maxLength: 32 }),
        (pairs) => {
          const a = new Float32Array(pairs.map(([x]) => x));
          const b = new Float32Array(pairs.map(([, y]) => y));
          const na = normalize(a);
          const nb = normalize(b);
          close(cosine(na, nb), cosine(a, b), 1e-4);
          let dot = 0;
          for (let i = 0; i < na.length; i++) dot += (na[i] ?? 0) * (nb[i] ?? 0);
          close(dot, cosine(a, b), 1e-4);
        },
      ),
    );
  });
});
