import type { MemoryRow } from '../../src/memory/memory-types.ts';
import { prng, Zipf } from './zipf.ts';

const VOCABULARY = 20_000;
/** The most frequent ranks, left out as a tokenizer drops stop words. */
const STOP_RANKS = 100;
const SYLLABLES = ['ka', 'lo', 'mi', 'ner', 'tas', 'vo', 'ul', 'pre', 'din', 'so', 'gar', 'bel'];

/** A made-up word per rank: syllables from the rank's digits in base 12 (distinct per rank). */
function wordOf(rank: number): string {
  let word = '';
  let n = rank + SYLLABLES.length;
  while (n > 0) {
    word += SYLLABLES[n % SYLLABLES.length];
    n = Math.floor(n / SYLLABLES.length);
  }
  return word;
}

/**
 * Synthetic memories and queries for search benchmarks: words from a Zipf(1.0) vocabulary
 * (natural text's shape), seeded, so every run measures the same text.
 */
export class Corpus {
  readonly #random: () => number;
  readonly #zipf: Zipf;

  constructor(seed: number) {
    this.#random = prng(seed);
    this.#zipf = new Zipf(VOCABULARY, 1.0, this.#random);
  }

  #word(): string {
    let rank = this.#zipf.next();
    while (rank < STOP_RANKS) rank = this.#zipf.next();
    return wordOf(rank);
  }

  /** A text of `n` words. */
  text(n: number): string {
    return Array.from({ length: n }, () => this.#word()).join(' ');
  }

  /** A query of `n` words. */
  query(n: number): string {
    return this.text(n);
  }

  /** `n` memories of one user: 8–24 words, sessions of 20 messages, a minute apart. */
  rows(tenant: string, userId: string, n: number): MemoryRow[] {
    const start = Date.now() - n * 60_000;
    return Array.from({ length: n }, (_, i) => ({
      tenant,
      id: `${String(i).padStart(10, '0')}${userId}`,
      userId,
      agentId: null,
      sessionId: `s-${Math.floor(i / 20)}`,
      content: this.text(8 + Math.floor(this.#random() * 17)),
      kind: 'message',
      tags: [],
      metadata: {},
      importance: Math.round(this.#random() * 100) / 100,
      pinned: false,
      createdAt: start + i * 60_000,
      updatedAt: start + i * 60_000,
      expiresAt: null,
      deletedAt: null,
      accessCount: 0,
      lastAccessedAt: null,
      version: 1,
      embedding: null,
    }));
  }
}
