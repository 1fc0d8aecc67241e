/** The ranking signals, in the order they are reported. */
export const SIGNALS = ['text', 'vector', 'recency', 'importance', 'pinned', 'use'] as const;

/** One ranking signal. */
export type SignalName = (typeof SIGNALS)[number];

/** The weight of each signal in the fused score. */
export type Weights = Record<SignalName, number>;

/** How signals are fused: normalized weighted sum, or reciprocal rank fusion. */
export type FusionMethod = 'weighted' | 'rrf';

/** Reciprocal rank fusion's damping constant (Cormack et al., 2009). */
export const RRF_K = 60;

/**
 * Default weights, chosen on the LoCoMo development split (`npm run eval -- locomo`): text
 * dominates; the other signals order memories of similar relevance, and rank them on their
 * own when the query is empty.
 */
export const DEFAULT_WEIGHTS: Weights = {
  text: 1,
  vector: 0.5,
  recency: 0.1,
  importance: 0.1,
  pinned: 0.2,
  use: 0.05,
};

/** Weighted sum of signal values (each in 0..1). */
export function fuseWeighted(values: Record<SignalName, number>, weights: Weights): number {
  let score = 0;
  for (const name of SIGNALS) score += weights[name] * values[name];
  return score;
}

/**
 * Reciprocal rank fusion: each signal ranks the candidates on its own, and a candidate scores
 * Σ weight / (RRF_K + rank) over the signals with a weight (rank 1 is the best; candidates with
 * a zero value are not ranked by that signal). Returns scores in the order of `values`.
 */
export function fuseRrf(values: Array<Record<SignalName, number>>, weights: Weights): number[] {
  const scores = new Array<number>(values.length).fill(0);
  const order = values.map((_, i) => i);
  for (const name of SIGNALS) {
    const weight = weights[name];
    if (weight === 0) continue;
    order.sort((a, b) => (values[b]?.[name] ?? 0) - (values[a]?.[name] ?? 0));
    order.forEach((i, position) => {
      if ((values[i]?.[name] ?? 0) > 0)
        scores[i] = (scores[i] ?? 0) + weight / (RRF_K + position + 1);
    });
  }
  return scores;
}
