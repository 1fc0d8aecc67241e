/**
 * The adaptive idle timeout of a user's sessions: a small streaming quantile sketch of the gaps
 * between the user's activities, learned from the user's own behaviour.
 *
 * The sketch. Gaps go into two log-scale histograms, one for gaps within a session and one for
 * gaps between sessions. Bin `i` holds gaps of 2^(i/4) to 2^((i+1)/4) seconds (4 bins per
 * doubling, each ≈19% wide) from 1 s to 2^19.5 s ≈ 8.6 days; shorter and longer gaps go to the
 * end bins, and gaps ≤ 0 or not finite are ignored. Before each observation every weight of
 * that histogram (and so its count, the sum of its weights) is multiplied by {@link DECAY}, so
 * an observation k steps old weighs DECAY^k and the model follows a user whose habits change
 * (an effective memory of 1 / (1 − DECAY) = 50 gaps). The decay is kept O(1): the stored
 * weights are unscaled and a running factor `s` (the weight of the next observation) grows by
 * 1 / DECAY per observation; the real weight of a bin is its stored weight / s. When `s` grows
 * past 2^40 the weights are divided by it once and it is reset to 1 (dropping weights below
 * 1e-9). A quantile q walks the cumulative weights to the bin holding q × total and
 * interpolates linearly inside it in log space, so it is exact to within one bin width.
 *
 * The timeout. Until the decayed count of within-session gaps reaches
 * {@link MIN_OBSERVATIONS} (with DECAY 0.98 that takes 6 gaps: 5 give 4.80), the configured
 * default is used (`source: 'default'`). Then it is quantile(q) of the within-session gaps ×
 * margin, clamped to [minMs, maxMs] (`clamped` says which bound cut it), rounded to whole ms
 * (`source: 'learned'`). A high quantile makes the timeout quick to grow (a few long gaps are
 * enough) and slow to shrink (after a switch to shorter gaps, the old long ones must decay to
 * below 1 − q of the weight: ≈ 150 gaps for q = 0.95), which errs on the side of not cutting a
 * conversation.
 *
 * Why 0.98 and not a faster 0.97: a 0.95 quantile of a memory of N gaps rests on the
 * (1 − 0.95) × N longest of them: 2.5 gaps at 0.98, only 1.7 at 0.97. In a simulation of a
 * user with ≈20-minute pauses (8–10% of gaps) among 4–12-minute ones (20 seeds, 60 days), 0.97
 * cut 2–2.5 times as many sessions as 0.98: a stretch with fewer pauses than usual let the
 * quantile fall below them.
 *
 * Feeding it (the caller's part): the service only sees gaps as its own timeouts cut them. If a
 * gap that expired a session is learned as a between-session gap, the long within-session gaps
 * the timeout cut are never learned and the timeout sinks (test/unit/timeout-simulation.test.ts,
 * "service view"). Learning as within-session a return within 2 × the timeout after an expiry
 * (probably a cut conversation) avoids this in the simulation.
 *
 * Between-session gaps are learned and their median is reported (`betweenMedianMs`, once any
 * has been seen) but they do not cap the timeout. A cap at the median between-session gap
 * was considered and left out: when sessions end by expiry, every between-session gap the
 * service sees is at least the timeout that was in force, so the cap would rarely bite; when it
 * would (sessions ended explicitly, then a quick return), it would cut slow conversations
 * mid-way to save idle time the explicit end already saves.
 *
 * The model is pure (no clock, no I/O); {@link TimeoutModel.toJSON} stores the exact state, so
 * `fromJSON(toJSON())` gives the same timeout and basis.
 */

import type { TimeoutBasis } from './session-types.ts';

/** The timeout settings (`SessionConfig.timeout`). */
export interface TimeoutSettings {
  defaultMs: number;
  minMs: number;
  maxMs: number;
  quantile: number;
  margin: number;
}

/** Within-session gaps (decayed count) needed before the learned value replaces the default. */
export const MIN_OBSERVATIONS = 5;

/** Factor applied to a histogram's weights before each of its observations. */
export const DECAY = 0.98;

/** Bins per doubling of the gap. */
export const BINS_PER_DOUBLING = 4;

/** Bins: 1 s to 2^(BINS / BINS_PER_DOUBLING) s = 2^19.5 s ≈ 8.6 days. */
export const BINS = 78;

/** The lower edge of bin 0, in ms. */
const BASE_MS = 1000;

/** The running scale is folded into the weights when it grows past this. */
const RENORMALIZE_AT = 2 ** 40;

/** Weights below this (after a renormalization) are dropped. */
const NEGLIGIBLE = 1e-9;

/** The serialization version. */
const VERSION = 1;

/** One decayed log-scale histogram. */
class Histogram {
  /** Unscaled weights: the real weight of bin i is `w[i] / s`. */
  readonly w: Float64Array;
  /** The weight (unscaled) of the next observation. */
  s: number;

  constructor(w = new Float64Array(BINS), s = 1) {
    this.w = w;
    this.s = s;
  }

  observe(gapMs: number): void {
    if (!Number.isFinite(gapMs) || gapMs <= 0) return;
    this.s /= DECAY;
    const i = binOf(gapMs);
    this.w[i] = (this.w[i] as number) + this.s;
    if (this.s > RENORMALIZE_AT) this.#renormalize();
  }

  /** The decayed count: the sum of the real weights. */
  count(): number {
    let sum = 0;
    for (const x of this.w) sum += x;
    return sum / this.s;
  }

  /** The q-quantile in ms, or null when empty. */
  quantile(q: number): number | null {
    let total = 0;
    for (const x of this.w) total += x;
    if (!(total > 0)) return null;
    const target = Math.min(1, Math.max(0, q)) * total;
    let below = 0;
    let last = 0;
    for (let i = 0; i < BINS; i++) {
      const x = this.w[i] as number;
      if (x <= 0) continue;
      last = i;
      if (below + x >= target) {
        const fraction = Math.min(1, Math.max(0, (target - below) / x));
        return BASE_MS * 2 ** ((i + fraction) / BINS_PER_DOUBLING);
      }
      below += x;
    }
    // Only reached through rounding of the sums: the top of the last non-empty bin.
    return BASE_MS * 2 ** ((last + 1) / BINS_PER_DOUBLING);
  }

  #renormalize(): void {
    for (let i = 0; i < BINS; i++) {
      const x = (this.w[i] as number) / this.s;
      this.w[i] = x < NEGLIGIBLE ? 0 : x;
    }
    this.s = 1;
  }

  toData(): HistogramData {
    const h: [number, number][] = [];
    for (let i = 0; i < BINS; i++) {
      const x = this.w[i] as number;
      if (x > 0) h.push([i, x]);
    }
    return { s: this.s, h };
  }

  /** Null when `data` is not a valid histogram. */
  static fromData(data: unknown): Histogram | null {
    if (typeof data !== 'object' || data === null) return null;
    const { s, h } = data as Record<string, unknown>;
    if (typeof s !== 'number' || !Number.isFinite(s) || s <= 0) return null;
    if (!Array.isArray(h)) return null;
    const w = new Float64Array(BINS);
    const seen = new Set<number>();
    for (const pair of h) {
      if (!Array.isArray(pair) || pair.length !== 2) return null;
      const [i, x] = pair as unknown[];
      if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= BINS) return null;
      if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) return null;
      if (seen.has(i)) return null;
      seen.add(i);
      w[i] = x;
    }
    return new Histogram(w, s);
  }
}

interface HistogramData {
  s: number;
  h: [number, number][];
}

/** The bin of a (positive, finite) gap; gaps outside the range go to the end bins. */
function binOf(gapMs: number): number {
  const i = Math.floor(Math.log2(gapMs / BASE_MS) * BINS_PER_DOUBLING);
  return Math.min(BINS - 1, Math.max(0, i));
}

/** Rounds a decayed count for display, down, so `withinGaps < MIN_OBSERVATIONS` ⇔ default. */
function shownCount(count: number): number {
  return Math.floor(count * 100) / 100;
}

/** A user's learned idle-timeout model (see the module comment). */
export class TimeoutModel {
  readonly #within: Histogram;
  readonly #between: Histogram;

  private constructor(within: Histogram, between: Histogram) {
    this.#within = within;
    this.#between = between;
  }

  static empty(): TimeoutModel {
    return new TimeoutModel(new Histogram(), new Histogram());
  }

  /** Parses a stored model; a missing or malformed one gives an empty model (never throws). */
  static fromJSON(text: string | null | undefined): TimeoutModel {
    if (typeof text !== 'string') return TimeoutModel.empty();
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      return TimeoutModel.empty();
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      return TimeoutModel.empty();
    }
    const { v, w, b } = data as Record<string, unknown>;
    if (v !== VERSION) return TimeoutModel.empty();
    const within = Histogram.fromData(w);
    const between = Histogram.fromData(b);
    if (within === null || between === null) return TimeoutModel.empty();
    return new TimeoutModel(within, between);
  }

  /**
   * The exact state, compact and versioned: `{"v":1,"w":{"s":…,"h":[[bin,weight],…]},"b":…}`
   * (`w` within-session gaps, `b` between-session gaps; only non-empty bins are listed).
   */
  toJSON(): string {
    return JSON.stringify({ v: VERSION, w: this.#within.toData(), b: this.#between.toData() });
  }

  /** A gap between two consecutive activities (messages/touches) of one session. */
  observeWithin(gapMs: number): void {
    this.#within.observe(gapMs);
  }

  /** The gap between the last activity of one session and the start of the user's next. */
  observeBetween(gapMs: number): void {
    this.#between.observe(gapMs);
  }

  /** The timeout to use now and why (TimeoutBasis). */
  timeout(s: TimeoutSettings): { timeoutMs: number; basis: TimeoutBasis } {
    const within = this.#within.count();
    const between = this.#between.count();
    const betweenMedian = between > 0 ? this.#between.quantile(0.5) : null;
    const basis: TimeoutBasis = {
      source: 'default',
      withinGaps: shownCount(within),
      betweenGaps: shownCount(between),
      quantile: s.quantile,
      quantileMs: null,
      margin: s.margin,
      clamped: null,
      betweenMedianMs: betweenMedian === null ? null : Math.round(betweenMedian),
    };
    const q = within >= MIN_OBSERVATIONS ? this.#within.quantile(s.quantile) : null;
    const wanted = q === null ? Number.NaN : Math.round(q * s.margin);
    // Too little history, or settings that give no number (a NaN margin): the default.
    if (q === null || Number.isNaN(wanted)) return { timeoutMs: s.defaultMs, basis };
    basis.source = 'learned';
    basis.quantileMs = Math.round(q);
    let timeoutMs = wanted;
    if (wanted < s.minMs) {
      timeoutMs = s.minMs;
      basis.clamped = 'min';
    } else if (wanted > s.maxMs) {
      timeoutMs = s.maxMs;
      basis.clamped = 'max';
    }
    return { timeoutMs, basis };
  }
}
