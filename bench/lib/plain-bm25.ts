/**
 * The plainest BM25 ranking in JavaScript, as a yardstick for Engram's ranker: lower-cased
 * words split on non-letters, an inverted index (term → document numbers and counts), score
 * accumulation into an array and a sort of the matches. No stemming, stop words, signals or
 * filters.
 */
export class PlainBm25 {
  readonly #postings = new Map<string, { docs: number[]; tfs: number[] }>();
  readonly #lengths: number[] = [];
  readonly #scores: Float64Array;
  readonly #avg: number;

  constructor(texts: string[]) {
    let total = 0;
    texts.forEach((text, doc) => {
      const words = text
        .toLowerCase()
        .split(/[^\p{L}\p{N}]+/u)
        .filter(Boolean);
      const tf = new Map<string, number>();
      for (const w of words) tf.set(w, (tf.get(w) ?? 0) + 1);
      for (const [w, n] of tf) {
        let p = this.#postings.get(w);
        if (!p) {
          p = { docs: [], tfs: [] };
          this.#postings.set(w, p);
        }
        p.docs.push(doc);
        p.tfs.push(n);
      }
      this.#lengths.push(words.length);
      total += words.length;
    });
    this.#avg = total / Math.max(1, texts.length);
    this.#scores = new Float64Array(texts.length);
  }

  /** The best `k` documents for `query`, by number. */
  search(query: string, k: number): number[] {
    const n = this.#lengths.length;
    const touched: number[] = [];
    for (const w of new Set(
      query
        .toLowerCase()
        .split(/[^\p{L}\p{N}]+/u)
        .filter(Boolean),
    )) {
      const p = this.#postings.get(w);
      if (!p) continue;
      const idf = Math.log(1 + (n - p.docs.length + 0.5) / (p.docs.length + 0.5));
      for (let i = 0; i < p.docs.length; i++) {
        const doc = p.docs[i] as number;
        const tf = p.tfs[i] as number;
        if (this.#scores[doc] === 0) touched.push(doc);
        const norm = 1.2 * (0.25 + (0.75 * (this.#lengths[doc] as number)) / this.#avg);
        this.#scores[doc] = (this.#scores[doc] as number) + (idf * tf * 2.2) / (tf + norm);
      }
    }
    touched.sort((a, b) => (this.#scores[b] as number) - (this.#scores[a] as number));
    const top = touched.slice(0, k);
    for (const doc of touched) this.#scores[doc] = 0;
    return top;
  }
}
