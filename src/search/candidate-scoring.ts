import type { MemoryRow } from '../memory/memory-types.ts';
import { DEFAULT_TEXT_RANKING } from './ranker.ts';
import { bm25Term, idf } from './signals.ts';
import { termsOf } from './tokenizer.ts';
import { indexedText } from './user-index.ts';

/** A memory with its text relevance to a query. */
export interface ScoredCandidate {
  row: MemoryRow;
  score: number;
}

/**
 * BM25 of full-text candidates (one user's memories that hold a word of the query, of
 * `memories` live ones), computed here rather than by the store: the statistics are the user's
 * own, as over an index (document frequencies and lengths among the candidates: every memory
 * holding a query term is one unless the store capped them), and SQLite FTS5's bm25() cost a
 * scan of every user's postings of each word. Returns the `limit` best, by score then newest
 * id.
 */
export function scoreCandidates(
  rows: MemoryRow[],
  query: string[],
  limit: number,
  memories: number,
): ScoredCandidate[] {
  if (rows.length === 0) return [];
  const wanted = new Set(termsOf(query.join(' ')));
  const tfs: Array<Map<string, number>> = [];
  const lengths: number[] = [];
  const df = new Map<string, number>();
  let total = 0;
  for (const row of rows) {
    const terms = termsOf(indexedText(row));
    const tf = new Map<string, number>();
    for (const t of terms) if (wanted.has(t)) tf.set(t, (tf.get(t) ?? 0) + 1);
    for (const t of tf.keys()) df.set(t, (df.get(t) ?? 0) + 1);
    tfs.push(tf);
    lengths.push(terms.length);
    total += terms.length;
  }
  const avg = total / rows.length || 1;
  const params = DEFAULT_TEXT_RANKING.bm25;
  const n = Math.max(memories, rows.length);
  // A candidate the store matched that scores 0 here (its stemmer and ours differ on a word)
  // is kept, last.
  const scored = rows.map((row, i) => {
    let score = 0;
    for (const [t, f] of tfs[i] as Map<string, number>) {
      score += bm25Term(f, idf(df.get(t) ?? 0, n), lengths[i] as number, avg, params);
    }
    return { row, score };
  });
  scored.sort((x, y) => y.score - x.score || (x.row.id < y.row.id ? 1 : -1));
  return scored.slice(0, limit);
}
