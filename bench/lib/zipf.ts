/** A seeded PRNG (mulberry32): uniform in [0, 1), the same sequence for the same seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * Zipf(s) over ranks 0…n-1: rank k is drawn with probability proportional to 1/(k+1)^s. The
 * cumulative weights are computed once; a draw is a binary search (≈17 steps for 100,000).
 */
export class Zipf {
  readonly n: number;
  readonly s: number;
  readonly #cdf: Float64Array;
  readonly #random: () => number;

  constructor(n: number, s: number, random: () => number) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError('Zipf: n must be an integer ≥ 1');
    this.n = n;
    this.s = s;
    this.#random = random;
    this.#cdf = new Float64Array(n);
    let total = 0;
    for (let k = 0; k < n; k++) {
      total += 1 / (k + 1) ** s;
      this.#cdf[k] = total;
    }
    for (let k = 0; k < n; k++) this.#cdf[k] = (this.#cdf[k] as number) / total;
  }

  /** Probability of rank `k`. */
  probability(k: number): number {
    return (this.#cdf[k] as number) - (k === 0 ? 0 : (this.#cdf[k - 1] as number));
  }

  /** A rank. */
  next(): number {
    const u = this.#random();
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Expected value of `f(rank)`. */
  expect(f: (rank: number) => number): number {
    let sum = 0;
    for (let k = 0; k < this.n; k++) sum += this.probability(k) * f(k);
    return sum;
  }
}

/** A seeded Fisher–Yates permutation of 0…n-1. */
export function permutation(n: number, random: () => number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = out[i] as number;
    out[i] = out[j] as number;
    out[j] = t;
  }
  return out;
}
