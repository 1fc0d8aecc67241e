/**
 * The ranking signals, each a small pure function. All but BM25 return a value in [0, 1];
 * BM25 is normalized by the fusion.
 */

/** BM25 parameters: term-frequency saturation and length normalization. */
export interface Bm25Params {
  k1: number;
  b: number;
}

/** Inverse document frequency of a term found in `df` of `n` documents (never negative). */
export function idf(df: number, n: number): number {
  return Math.log(1 + (n - df + 0.5) / (df + 0.5));
}

/** BM25 weight of one term in one document. */
export function bm25Term(
  tf: number,
  termIdf: number,
  length: number,
  averageLength: number,
  p: Bm25Params,
): number {
  const norm = averageLength > 0 ? 1 - p.b + (p.b * length) / averageLength : 1;
  return (termIdf * tf * (p.k1 + 1)) / (tf + p.k1 * norm);
}

/** Exponential decay: 1 now, ½ after one half-life, 0 for never (`at` null). */
export function decay(at: number | null, now: number, halfLifeMs: number): number {
  if (at === null) return 0;
  const age = now - at;
  return age <= 0 ? 1 : 2 ** (-age / halfLifeMs);
}

/** Recency: the later of creation and last access, decayed. */
export function recency(
  createdAt: number,
  lastAccessedAt: number | null,
  now: number,
  halfLifeMs: number,
): number {
  const last = lastAccessedAt !== null && lastAccessedAt > createdAt ? lastAccessedAt : createdAt;
  return decay(last, now, halfLifeMs);
}

/** Accesses at which the use signal reaches 1. */
export const USE_SATURATION = 100;
const LOG_SATURATION = Math.log1p(USE_SATURATION);

/** Use: access count, log-scaled, 1 from {@link USE_SATURATION} accesses. */
export function usage(accessCount: number): number {
  return accessCount <= 0 ? 0 : Math.min(1, Math.log1p(accessCount) / LOG_SATURATION);
}

/** Importance as stored (0..1), clamped. */
export function importance(value: number): number {
  return Math.min(1, Math.max(0, value));
}

/** Pinned: 1 or 0. */
export function pinned(value: boolean): number {
  return value ? 1 : 0;
}

/** Vector similarity: cosine, negative values clamped to 0. */
export function similarity(cosineValue: number): number {
  return cosineValue > 0 ? Math.min(1, cosineValue) : 0;
}
