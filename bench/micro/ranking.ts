/** `rank()` over a user's index of 50, 1,000 and 10,000 memories, as `bench/search.ts` ranks. */
import { rank, rankOptions } from '../../src/search/ranker.ts';
import { termsOf } from '../../src/search/tokenizer.ts';
import { UserIndex } from '../../src/search/user-index.ts';
import { Corpus } from '../lib/text-corpus.ts';
import { type MicroResult, measure } from './micro-result.ts';

const SIZES = [50, 1000, 10_000];
const QUERY_WORDS = 5;
/** Distinct queries cycled through, so that no single query's postings decide the figure. */
const QUERIES = 256;

export async function run(): Promise<MicroResult[]> {
  const options = rankOptions(Date.now(), 30 * 86_400_000);
  const tasks: Array<[string, () => void]> = [];
  for (const n of SIZES) {
    const corpus = new Corpus(n);
    const index = new UserIndex(1, corpus.rows('bench', `user-${n}`, n));
    const queries = Array.from({ length: QUERIES }, () => corpus.query(QUERY_WORDS));
    const terms = queries.map(termsOf);
    let i = 0;
    let j = 0;
    tasks.push([
      `rank ${n.toLocaleString('en-US')} memories, terms given`,
      () => {
        rank(index, terms[i++ % QUERIES] as string[], options);
      },
    ]);
    tasks.push([
      `rank ${n.toLocaleString('en-US')} memories, with termsOf`,
      () => {
        rank(index, termsOf(queries[j++ % QUERIES] as string), options);
      },
    ]);
  }
  return measure('ranking', tasks);
}
