/**
 * What the end-to-end scenarios (mix, stress, soak) share: their options, the seeded data set
 * and server, the mix's saturation and the ceilings measured with the same generator.
 */
import { join } from 'node:path';
import { type CeilingKind, startCeiling } from './ceiling.ts';
import { type Dataset, planDataset, TextSource } from './dataset.ts';
import { median } from './load.ts';
import { probePostgres } from './postgres.ts';
import { probeRedis, SHARED_REDIS_URL } from './redis.ts';
import type { ScenarioOptions } from './report.ts';
import { type SeededData, seedData } from './seeded-engram.ts';
import {
  type EngramServer,
  inheritedSettings,
  REPO_ROOT,
  type StoreKind,
} from './server-process.ts';
import { ACTION_SHARES, type MixResult, type MixSpec, runMix } from './virtual-users.ts';

/** Options of the end-to-end scenarios, with their help text. */
export const MIX_OPTIONS: Record<string, string> = {
  users: 'N        users of the data set (default 2000; soak 20000)',
  memories: 'N     memories in all, Zipf over users (default 200000; soak 1000000)',
  vus: 'N          concurrent virtual users of the open-loop runs (default 1000)',
  sockets: 'N      client connections (the application pool; default 64)',
  'max-per-user':
    'N  most memories of one user (default 10000; soak 2000; above ENGRAM_SEARCH_INDEX_MAX_MEMORIES, 20000, a user is searched through the store full-text index)',
  store: 'sqlite|postgres  store (postgres also uses the Redis at REDIS_URL; default sqlite)',
  'index-mib':
    'N   ENGRAM_SEARCH_INDEX_MAX_BYTES of the server in MiB (mix, stress: 512, to hold the active users; soak: the default 128)',
};

/** The parsed options. */
export interface MixOptions {
  users: number;
  memories: number;
  vus: number;
  sockets: number;
  maxPerUser: number;
  /** The server's search index budget in MiB; undefined: the server's default. */
  indexMiB: number | undefined;
  store: StoreKind;
}

function count(text: string | undefined, fallback: number, name: string): number {
  const value = text === undefined ? fallback : Number(text);
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`--${name} must be an integer ≥ 1`);
  return value;
}

/** Parses {@link MIX_OPTIONS} from a scenario's options (with per-scenario defaults). */
export function mixOptions(opts: ScenarioOptions, defaults: Partial<MixOptions> = {}): MixOptions {
  const x = opts.extra ?? {};
  const store = x.store ?? defaults.store ?? 'sqlite';
  if (store !== 'sqlite' && store !== 'postgres') throw new RangeError('--store: sqlite|postgres');
  return {
    users: count(x.users, defaults.users ?? 2_000, 'users'),
    memories: count(x.memories, defaults.memories ?? 200_000, 'memories'),
    vus: count(x.vus, defaults.vus ?? 1_000, 'vus'),
    sockets: count(x.sockets, defaults.sockets ?? 64, 'sockets'),
    maxPerUser: count(x['max-per-user'], defaults.maxPerUser ?? 10_000, 'max-per-user'),
    indexMiB:
      x['index-mib'] !== undefined
        ? count(x['index-mib'], 0, 'index-mib')
        : 'indexMiB' in defaults
          ? defaults.indexMiB
          : 512,
    store,
  };
}

/** A seeded data set and the texts of its virtual users. */
export interface MixData {
  dataset: Dataset;
  text: TextSource;
  seeded: SeededData;
  /** The server environment beyond the defaults (PostgreSQL mode: Redis). */
  env: Record<string, string>;
  /** How the data set was made, for the report. */
  describe: string;
}

/** Data sets seeded in this process, by their options: scenarios run together share one. */
const prepared = new Map<string, Promise<MixData>>();

/**
 * Plans and seeds the data set, once per process for the same options (`npm run bench -- mix
 * stress` seeds once); fails (loudly) when the store asked for is not reachable.
 */
export function prepareMix(mix: MixOptions, label: string): Promise<MixData> {
  const key = JSON.stringify([mix.store, mix.users, mix.memories, mix.maxPerUser, mix.indexMiB]);
  let data = prepared.get(key);
  if (!data) {
    data = seedMix(mix, label);
    prepared.set(key, data);
  }
  return data;
}

async function seedMix(mix: MixOptions, label: string): Promise<MixData> {
  const env: Record<string, string> = {};
  if (mix.indexMiB !== undefined) {
    env.ENGRAM_SEARCH_INDEX_MAX_BYTES = String(mix.indexMiB * 2 ** 20);
  }
  if (mix.store === 'postgres') {
    const problem = await probePostgres();
    if (problem !== null) throw new Error(`--store postgres: PostgreSQL not reachable: ${problem}`);
    const redis = await probeRedis(SHARED_REDIS_URL);
    if (redis === null) env.REDIS_URL = SHARED_REDIS_URL;
    else process.stderr.write(`\n!!!!! ${label}: no Redis (${redis}): PostgreSQL only !!!!!\n\n`);
  }
  const text = await TextSource.load();
  const dataset = planDataset({
    users: mix.users,
    memories: mix.memories,
    zipf: 1.0,
    maxPerUser: Math.max(mix.maxPerUser, Math.ceil(mix.memories / mix.users)),
    seed: 42,
  });
  const seeded = await seedData(mix.store, env, dataset, text, label);
  const biggest = dataset.sizes[0] ?? 0;
  const middle = dataset.sizes[Math.floor(dataset.sizes.length / 2)] ?? 0;
  return {
    dataset,
    text,
    seeded,
    env,
    describe: `${dataset.total.toLocaleString('en-US')} memories of ${mix.users.toLocaleString('en-US')} users, sizes Zipf(1.0) capped at ${mix.maxPerUser.toLocaleString('en-US')} (biggest ${biggest.toLocaleString('en-US')}, median ${middle.toLocaleString('en-US')}), the same law for which users are busiest; texts: ${text.origin === 'locomo' ? `LoCoMo's ${text.size.toLocaleString('en-US')} dialog turns as memories and messages, its questions as queries (read from ../shared/datasets/locomo10-dev)` : 'synthetic Zipf-vocabulary text (LoCoMo not found at ../shared/datasets/locomo10-dev)'}; seeded through POST /v1/memories/batch in ${mix.store === 'sqlite' ? 'SQLite' : `PostgreSQL${env.REDIS_URL ? ' + Redis' : ''}`} (${seeded.seeding.seconds.toFixed(1)} s), then a fresh server started on the data; server settings: defaults${mix.indexMiB === undefined ? '' : `, but search indexes ${mix.indexMiB} MiB (ENGRAM_SEARCH_INDEX_MAX_BYTES)`}${inheritedSettings().length === 0 ? '' : `, and ${inheritedSettings().join(', ')} from the bench's environment`}`,
  };
}

/** An open-loop run of the mix's users and connections against `base` at `rate` requests/s. */
export function openMix(
  base: string,
  key: string,
  data: MixData,
  mix: MixOptions,
  rate: number,
  run: Pick<MixSpec, 'durationSec' | 'warmupSec' | 'seed'> & Partial<MixSpec>,
): Promise<MixResult> {
  return runMix({
    base,
    key,
    dataset: data.dataset,
    text: data.text,
    vus: mix.vus,
    sockets: mix.sockets,
    rate,
    ...run,
  });
}

/** The mix's saturation: closed-loop runs (no think time) of `sockets` users; medians. */
export interface Saturation {
  rate: number;
  meanBytes: number;
  runs: MixResult[];
}

/** The medians of closed-loop runs. */
function saturationOf(runs: MixResult[]): Saturation {
  return {
    rate: median(runs.map((r) => r.achievedRate)),
    meanBytes: median(runs.map((r) => r.meanBytes)),
    runs,
  };
}

/**
 * Closed-loop mix runs (no think time) of `users` users on `sockets` connections against
 * `base`, `runs` times (seeds `firstSeed`, `firstSeed + 1`…), each after its own `warmupSec`.
 * The saturation uses the open loop's users and connections: the same users touch the same
 * share of the data set (indexes, caches) as the open loop does.
 */
export async function closedLoop(
  base: string,
  key: string,
  data: MixData,
  users: number,
  sockets: number,
  opts: ScenarioOptions,
  runs = opts.runs,
  firstSeed = 1,
): Promise<Saturation> {
  const results: MixResult[] = [];
  for (let i = 0; i < runs; i++) {
    results.push(
      await runMix({
        base,
        key,
        dataset: data.dataset,
        text: data.text,
        vus: users,
        sockets,
        rate: 0,
        durationSec: opts.durationSec,
        warmupSec: opts.warmupSec,
        seed: firstSeed + i,
      }),
    );
  }
  return saturationOf(results);
}

/** A bare server keeps no state: a short warm-up (JIT) is enough. */
export function ceilingWarmup(opts: ScenarioOptions): ScenarioOptions {
  return { ...opts, warmupSec: Math.min(opts.warmupSec, 2) };
}

/** The ceilings of the mix: the same generator and users against bare servers. */
export type Ceilings = Record<CeilingKind, Saturation>;

const CEILING_KINDS: readonly CeilingKind[] = ['node:http', 'fastify'];

/** Engram's saturation and the ceilings', with Engram's ratio to each. */
export interface Saturations {
  saturation: Saturation;
  ceilings: Ceilings;
  /** Median over the turns of Engram's rate over the ceiling's rate of the same turn. */
  ratios: Record<CeilingKind, number>;
}

/**
 * The closed-loop saturation of the Engram server at `base` and of the bare `node:http` and
 * Fastify ceilings (answering every path with the mean answer of Engram's first run), measured
 * in turns: Engram, node:http, Fastify, `opts.runs` times. Each ratio is the median of the
 * turns' ratios. On shared cores the machine's speed drifts over the minutes of a bench: two
 * runs of the same code measured Engram's saturation at 0.155 and 0.130 of a Fastify ceiling
 * measured eight minutes after it (9,093 and 11,488 req/s). Measured next to each other, both
 * sides of a ratio see the same machine.
 */
export async function saturations(
  server: { base: string; key: string },
  data: MixData,
  users: number,
  sockets: number,
  opts: ScenarioOptions,
): Promise<Saturations> {
  // One run of `users` on `sockets` against `base`: the turn's seed, so both sides see the
  // same users.
  const once = async (base: string, key: string, o: ScenarioOptions, seed: number) =>
    (await closedLoop(base, key, data, users, sockets, o, 1, seed)).runs[0] as MixResult;
  const engram = [await once(server.base, server.key, opts, 1)];
  const bytes = Math.round(engram[0]?.meanBytes ?? 0);
  const bare = await Promise.all(CEILING_KINDS.map((kind) => startCeiling({ '*': bytes }, kind)));
  const runs: Record<CeilingKind, MixResult[]> = { 'node:http': [], fastify: [] };
  try {
    for (let i = 0; i < opts.runs; i++) {
      if (i > 0) engram.push(await once(server.base, server.key, opts, i + 1));
      for (const [k, kind] of CEILING_KINDS.entries()) {
        const ceiling = bare[k] as (typeof bare)[number];
        runs[kind].push(await once(ceiling.base, 'ceiling', ceilingWarmup(opts), i + 1));
      }
    }
  } finally {
    await Promise.all(bare.map((c) => c.stop()));
  }
  const ratio = (kind: CeilingKind) =>
    median(engram.map((r, i) => r.achievedRate / (runs[kind][i]?.achievedRate ?? Number.NaN)));
  return {
    saturation: saturationOf(engram),
    ceilings: { 'node:http': saturationOf(runs['node:http']), fastify: saturationOf(runs.fastify) },
    ratios: { 'node:http': ratio('node:http'), fastify: ratio('fastify') },
  };
}

/** Starts a server on the seeded data. */
export function startMixServer(data: MixData): Promise<EngramServer> {
  return data.seeded.start(data.env);
}

/** `1,234` */
export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

/** Milliseconds with two decimals below 10, one below 100, none above. */
export function ms(n: number): string {
  return n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0);
}

/** Where the plots go, next to the results. */
export const PLOT_DIR = join(REPO_ROOT, 'bench', 'results');

/**
 * Warm-up of a mix run: long enough that users are mid-session (≈ 20 actions per session), at
 * least 10 s. Written back into `opts`, so the report states the warm-up that ran.
 */
export function mixWarmup(opts: ScenarioOptions): number {
  opts.warmupSec = Math.max(opts.warmupSec, 10);
  return opts.warmupSec;
}

/** The median run of several (by p99 of all requests). */
export function medianRun(runs: MixResult[]): MixResult {
  const sorted = [...runs].sort((a, b) => a.all.p99 - b.all.p99);
  return sorted[Math.floor((sorted.length - 1) / 2)] as MixResult;
}

/** A short description of the mix, for the notes. */
export function mixDescription(vus: number, sockets: number): string {
  const shares = Object.entries(ACTION_SHARES)
    .map(([a, s]) => `${a} ${Math.round(s * 100)}%`)
    .join(', ');
  return `Each virtual user starts a session (POST /v1/sessions with an opening message: preload) for a user drawn by activity, then acts: ${shares} (search: POST …/memories/search, k 10, a LoCoMo question; append: POST /v1/sessions/{id}/messages, one message; read: GET /v1/memories/{id} of a preloaded memory; idle: a pause, then back to the same session; end: POST /v1/sessions/{id}/end, and the next action starts a new session). ${fmt(vus)} users share a pool of ${sockets} keep-alive connections (an application's HTTP pool); waiting for a connection counts in the latency.`;
}
