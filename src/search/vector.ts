/**
 * Cosine similarity of two vectors, in [-1, 1]; 0 when their dimensions differ, when either
 * is empty or all zeros, or when either holds a non-finite number.
 */
export function cosine(a: Float32Array, b: Float32Array): number {
  const n = a.length;
  if (n === 0 || n !== b.length) return 0;
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    dot += x * y;
    aa += x * x;
    bb += y * y;
  }
  if (aa === 0 || bb === 0) return 0;
  const similarity = dot / (Math.sqrt(aa) * Math.sqrt(bb));
  if (Number.isNaN(similarity)) return 0;
  // Rounding can step just outside the range.
  return Math.min(1, Math.max(-1, similarity));
}

/**
 * A copy of `v` scaled to unit length (then the cosine of two such vectors is their dot
 * product); a copy of `v` unchanged when it is all zeros.
 */
export function normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i] as number;
    sum += x * x;
  }
  const out = new Float32Array(v);
  if (sum === 0 || !Number.isFinite(sum)) return out;
  const scale = 1 / Math.sqrt(sum);
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) * scale;
  return out;
}
