/**
 * `rank()` over a user's index of 50, 1,000 and 10,000 memories, as `bench/search.ts` ranks;
 * then over 2,000 and 10,000 memories of LoCoMo's dialog turns (the realistic mix's texts):
 * one of its questions (a search), and a dialog turn as a session's opening message (the
 * preload's query, far longer).
 */
import type { MemoryRow } from '../../src/memory/memory-types.ts';
import { rank, rankOptions } from '../../src/search/ranker.ts';
import { termsOf } from '../../src/search/tokenizer.ts';
import { UserIndex } from '../../src/search/user-index.ts';
import { TextSource } from '../lib/dataset.ts';
import { Corpus } from '../lib/text-corpus.ts';
import { prng } from '../lib/zipf.ts';
import { type MicroResult, measure } from './micro-result.ts';

const LOCOMO_SIZES = [2000, 10_000];

/** `n` memories of one user as the mix seeds them (kinds, sessions of 20, importance, pins). */
function seededRows(text: TextSource, n: number, now: number): MemoryRow[] {
  const random = prng(n);
  return Array.from({ length: n }, (_, i) => {
    const m = text.memory(random, i) as Pick<
      MemoryRow,
      'content' | 'kind' | 'importance' | 'pinned'
    > & {
      sessionId?: string;
    };
    const at = now - (n - i) * 60_000;
    return {
      tenant: 'bench',
      id: `${String(i).padStart(10, '0')}u`,
      userId: 'u',
      agentId: null,
      sessionId: m.sessionId ?? null,
      content: m.content,
      kind: m.kind,
      tags: [],
      metadata: {},
      importance: m.importance,
      pinned: m.pinned,
      createdAt: at,
      updatedAt: at,
      expiresAt: null,
      deletedAt: null,
      accessCount: i % 7,
      lastAccessedAt: null,
      version: 1,
      embedding: null,
    };
  });
}

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
  const text = await TextSource.load();
  const origin = text.origin === 'locomo' ? 'LoCoMo' : 'synthetic (no LoCoMo)';
  for (const n of LOCOMO_SIZES) {
    const index = new UserIndex(1, seededRows(text, n, options.now));
    const random = prng(n + 1);
    const questions = Array.from({ length: QUERIES }, () => termsOf(text.query(random)));
    const openings = Array.from({ length: QUERIES }, () => termsOf(text.message(random)));
    let q = 0;
    let m = 0;
    tasks.push([
      `rank ${n.toLocaleString('en-US')} ${origin} memories, a question`,
      () => {
        rank(index, questions[q++ % QUERIES] as string[], options);
      },
    ]);
    tasks.push([
      `rank ${n.toLocaleString('en-US')} ${origin} memories, an opening message (preload)`,
      () => {
        rank(index, openings[m++ % QUERIES] as string[], options);
      },
    ]);
  }
  return measure('ranking', tasks);
}
