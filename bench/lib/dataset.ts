/**
 * The shared data set of the end-to-end scenarios (mix, stress, soak): N users whose sizes and
 * activity follow one Zipf law (the biggest users are also the busiest), holding realistic
 * memory texts, seeded through Engram's own batch API.
 */
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { DEFAULT_DATA_DIR } from '../eval/locomo.ts';
import { loadLocomo } from '../eval/locomo-data.ts';
import type { EngramServer } from './server-process.ts';
import { Corpus } from './text-corpus.ts';
import { prng, Zipf } from './zipf.ts';

/** The shape of a data set. */
export interface DatasetSpec {
  users: number;
  /** Memories in all (the sum of the users' sizes comes within a few of it). */
  memories: number;
  /** Zipf exponent of users' sizes and activity. @default 1.0 */
  zipf: number;
  /** Most memories of one user. @default 20_000 */
  maxPerUser: number;
  seed: number;
}

/** A planned data set: every user's size, and a draw of users by activity. */
export interface Dataset {
  spec: DatasetSpec;
  /** Memories of user `u`, ranked by size (user 0 is the biggest). */
  sizes: Uint32Array;
  total: number;
  userId: (u: number) => string;
}

/** Size of user `u` for a scale factor: `f / (u+1)^s`, at least 1, at most the cap. */
function sizeAt(spec: DatasetSpec, f: number, u: number): number {
  return Math.min(spec.maxPerUser, Math.max(1, Math.round(f / (u + 1) ** spec.zipf)));
}

/**
 * Plans the users' sizes: Zipf(s) over users, each at least 1 and at most `maxPerUser`, scaled
 * (bisection on the factor) so the sizes add up to `memories`.
 */
export function planDataset(spec: DatasetSpec): Dataset {
  if (spec.memories < spec.users) throw new RangeError('dataset: fewer memories than users');
  if (spec.users * spec.maxPerUser < spec.memories) {
    throw new RangeError('dataset: users × maxPerUser cannot hold that many memories');
  }
  const totalFor = (f: number) => {
    let sum = 0;
    for (let u = 0; u < spec.users; u++) sum += sizeAt(spec, f, u);
    return sum;
  };
  let lo = 0;
  let hi = spec.memories * 2;
  while (totalFor(hi) < spec.memories) hi *= 2;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (totalFor(mid) < spec.memories) lo = mid;
    else hi = mid;
  }
  const sizes = new Uint32Array(spec.users);
  let total = 0;
  for (let u = 0; u < spec.users; u++) {
    sizes[u] = sizeAt(spec, hi, u);
    total += sizes[u] as number;
  }
  return { spec, sizes, total, userId: (u) => `user-${String(u).padStart(6, '0')}` };
}

/** Draws users by activity: Zipf over the size ranks, so user 0 is the busiest. */
export function activity(dataset: Dataset, random: () => number): () => number {
  const zipf = new Zipf(dataset.spec.users, dataset.spec.zipf, random);
  return () => zipf.next();
}

/** Memory kinds of seeded memories, with their shares (the rest are messages). */
const KINDS: Array<[kind: string, share: number]> = [
  ['fact', 0.15],
  ['preference', 0.05],
  ['event', 0.05],
];

/**
 * Texts of memories, messages and queries. From LoCoMo (real long conversations: its dialog
 * turns as memories and messages, its questions as queries) when the data set is at
 * `../shared/datasets/locomo10-dev`; otherwise synthetic Zipf-vocabulary text, and `origin`
 * says so.
 */
export class TextSource {
  readonly origin: 'locomo' | 'synthetic';
  readonly #turns: string[];
  readonly #questions: string[];

  private constructor(origin: 'locomo' | 'synthetic', turns: string[], questions: string[]) {
    this.origin = origin;
    this.#turns = turns;
    this.#questions = questions;
  }

  /** LoCoMo's texts from `dir` when it exists, else synthetic ones. */
  static async load(dir = DEFAULT_DATA_DIR): Promise<TextSource> {
    if (existsSync(dir)) {
      const conversations = await loadLocomo(dir);
      const turns = conversations.flatMap((c) => c.turns.map((t) => t.content));
      const questions = conversations.flatMap((c) => c.questions.map((q) => q.question));
      if (turns.length > 0 && questions.length > 0) {
        return new TextSource('locomo', turns, questions);
      }
    }
    const corpus = new Corpus(1);
    return new TextSource(
      'synthetic',
      Array.from({ length: 3_000 }, (_, i) => corpus.text(8 + (i % 17))),
      Array.from({ length: 1_000 }, () => corpus.query(4)),
    );
  }

  /** Distinct memory texts on hand. */
  get size(): number {
    return this.#turns.length;
  }

  /** A memory or message text. */
  message(random: () => number): string {
    return this.#turns[Math.floor(random() * this.#turns.length)] as string;
  }

  /** A search query. */
  query(random: () => number): string {
    return this.#questions[Math.floor(random() * this.#questions.length)] as string;
  }

  /** The `i`-th seeded memory of a user (deterministic in `random`'s sequence). */
  memory(random: () => number, i: number): object {
    const r = random();
    let kind = 'message';
    let acc = 0;
    for (const [k, share] of KINDS) {
      acc += share;
      if (r < acc) {
        kind = k;
        break;
      }
    }
    return {
      content: this.message(random),
      kind,
      // Sessions of 20 messages; facts and preferences outside any session.
      ...(kind === 'message' ? { sessionId: `seed-${Math.floor(i / 20)}` } : {}),
      importance: Math.round(random() * 100) / 100,
      pinned: kind === 'preference' && random() < 0.2,
    };
  }
}

/** Items per batch request while seeding (the API's most). */
const SEED_BATCH = 1_000;

/**
 * Seeds `dataset` into `server` through POST /v1/memories/batch, `concurrency` requests in
 * flight; prints progress to stderr every 10 s. Every run seeds the same texts.
 */
export async function seedDataset(
  server: EngramServer,
  dataset: Dataset,
  text: TextSource,
  label: string,
  concurrency = 2,
): Promise<{ memories: number; seconds: number }> {
  const headers = { authorization: `Bearer ${server.key}`, 'content-type': 'application/json' };
  const random = prng(dataset.spec.seed);
  // Batches are made in order of users (one random stream), then sent by the workers.
  let user = 0;
  let offset = 0;
  const nextBatch = (): object[] | null => {
    while (user < dataset.spec.users && offset >= (dataset.sizes[user] as number)) {
      user++;
      offset = 0;
    }
    if (user >= dataset.spec.users) return null;
    const userId = dataset.userId(user);
    const end = Math.min(dataset.sizes[user] as number, offset + SEED_BATCH);
    const items: object[] = [];
    for (let i = offset; i < end; i++) items.push({ userId, ...text.memory(random, i) });
    offset = end;
    return items;
  };
  const t0 = performance.now();
  let memories = 0;
  let reported = t0;
  const worker = async (): Promise<void> => {
    for (let items = nextBatch(); items !== null; items = nextBatch()) {
      const res = await fetch(`${server.base}/v1/memories/batch`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ items }),
      });
      if (res.status !== 201) throw new Error(`seeding: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
      memories += items.length;
      if (performance.now() - reported > 10_000) {
        reported = performance.now();
        process.stderr.write(
          `${label}: seeded ${memories.toLocaleString('en-US')} of ${dataset.total.toLocaleString('en-US')} memories\n`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { memories, seconds: (performance.now() - t0) / 1000 };
}
