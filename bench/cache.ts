/**
 * The cache benchmark (issue 3's targets):
 *
 * 1. Seeds one SQLite Engram with `--users` users (memories per user drawn from Zipf(1.5) over
 *    1–20) through POST /v1/memories/batch, timed; later servers start from copies of it.
 * 2. Hit ratio: a Zipf(`--zipf`) workload over the users, `--write-ratio` writes (POST
 *    /v1/memories) and the rest reads of GET /v1/users/{u}/memories?limit=20, after a warm-up
 *    (every user read once, least popular first, then `--warmup` s of the workload). Measured
 *    for each L1 size (the 64 MiB default and 512 MiB), without and with a Redis L2. Sources
 *    come from the `engram-cache` header of every read (l1 and l2 are hits).
 * 3. Throughput: one warm ~2 KB memory list read by 16 connections, interleaved with the
 *    node:http and bare Fastify ceilings answering a body of the same size.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { startCeiling } from './lib/ceiling.ts';
import { deferCleanup } from './lib/cleanup.ts';
import { processCpuMs, selfCpuMs } from './lib/cpu.ts';
import {
  headerOf,
  type LoadSample,
  type LoadSpec,
  type LoadSummary,
  load,
  summarize,
} from './lib/load.ts';
import {
  probeRedis,
  redisServerBinary,
  SHARED_REDIS_URL,
  startThrowawayRedis,
} from './lib/redis.ts';
import type { ReportSection, ScenarioOptions, ScenarioResult } from './lib/report.ts';
import { type EngramServer, startEngram } from './lib/server-process.ts';
import { permutation, prng, Zipf } from './lib/zipf.ts';

const MiB = 2 ** 20;
/** L1 sizes tried (MiB): Engram's default, and one that holds the whole working set. */
const L1_SIZES_MIB = [64, 512];
const CONNECTIONS = 16;
const SEED_BATCH = 1_000;
const SEED_CONNECTIONS = 4;
/** Memories per seeded user: Zipf(SIZE_EXPONENT) over 1…MAX_PER_USER (mean ≈ 3.4). */
const MAX_PER_USER = 20;
const SIZE_EXPONENT = 1.5;
const LIST_LIMIT = 20;
/** Size of the warm list read measured against the ceilings. */
const TARGET_BODY_BYTES = 2_048;
const HIT_RATIO_TARGET = 0.98;
const THROUGHPUT_TARGET = 0.75;

// ---------------------------------------------------------------------------------------------
// Options

interface CacheOptions {
  users: number;
  zipf: number;
  writeRatio: number;
  redis: 'on' | 'off' | 'auto';
  /** L1 sizes to try, in bytes. */
  l1Sizes: number[];
}

function cacheOptions(extra: Record<string, string> = {}): CacheOptions {
  const num = (name: string, fallback: number, ok: (n: number) => boolean, rule: string) => {
    const text = extra[name];
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || !ok(value)) throw new RangeError(`--${name} must be ${rule}`);
    return value;
  };
  const redis = extra.redis ?? 'auto';
  if (redis !== 'on' && redis !== 'off' && redis !== 'auto') {
    throw new RangeError('--redis must be on, off or auto');
  }
  return {
    users: num('users', 100_000, (n) => Number.isInteger(n) && n >= 100, 'an integer ≥ 100'),
    zipf: num('zipf', 1.0, (n) => n >= 0, '≥ 0'),
    writeRatio: num('write-ratio', 0.1, (n) => n >= 0 && n < 1, 'in [0, 1)'),
    redis,
    l1Sizes: (extra.l1 ?? L1_SIZES_MIB.join(',')).split(',').map((text) => {
      const value = Number(text);
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError('--l1 must be a list of whole MiB, e.g. 64,512');
      }
      return value * MiB;
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// The data: users, their memories, realistic short texts

const NAMES = ['Ana', 'Ben', 'Chen', 'Dara', 'Eli', 'Farah', 'Gus', 'Hana', 'Ivo', 'Jun', 'Kofi'];
const FACTS = [
  'prefers green tea in the morning and coffee after lunch',
  'works remotely on Fridays and keeps meetings short',
  'is allergic to peanuts; suggest recipes without them',
  'plays the cello in a community orchestra on Tuesday evenings',
  'is planning a trip to Lisbon in the spring with two friends',
  'asked for answers in metric units and a 24-hour clock',
  'is learning Rust and prefers examples over theory',
  'has a dog called Pixel who needs a walk at 7 am',
  'runs a small bakery and gets up at 4 am on weekdays',
  'is vegetarian but eats fish once a week',
  'wants reminders about the quarterly tax payment',
  'reads science fiction and just finished a Le Guin novel',
  'has two kids in primary school; pickup is at 3:15 pm',
  'is training for a half marathon in October',
  'dislikes long emails and asks for bullet points',
  'uses a standing desk and takes a break every hour',
  'is moving to a new flat at the end of the month',
  'speaks Portuguese at home and English at work',
  'keeps a budget spreadsheet and reviews it on Sundays',
  'is colour-blind (red/green); avoid those in charts',
  'volunteers at the food bank on the first Saturday of the month',
  'prefers trains over flights for trips under five hours',
  'is writing a thesis on urban heat islands',
  'has a standing call with their mother on Wednesdays',
];
const FRAMES: ((fact: string, name: string, day: number) => string)[] = [
  (fact) => `The user ${fact}.`,
  (fact, _name, day) => `Noted on day ${day} of the project: the user ${fact}.`,
  (fact, name) => `${name} mentioned that they ${fact.replace(/^is /, 'are ')}.`,
  (fact) => `Remember that the user ${fact}, and bring it up only when it matters.`,
  (fact, name) => `${name}: ${fact}.`,
];
const TAGS = ['food', 'travel', 'work', 'health', 'music', 'family', 'tech', 'schedule', 'pets'];
const KINDS = ['fact', 'preference', 'event'];

/** The users of a run and how they are drawn. */
class Population {
  readonly n: number;
  /** Run tag in every user id: keys never meet those of another run in a shared Redis. */
  readonly tag = randomBytes(3).toString('hex');
  /** Memories seeded per user. */
  readonly seeded: Uint8Array;
  /** User index of each popularity rank (rank 0 is the most popular). */
  readonly byRank: Uint32Array;
  readonly popularity: Zipf;
  readonly #text: () => number;

  constructor(n: number, zipfS: number) {
    this.n = n;
    const sizes = new Zipf(MAX_PER_USER, SIZE_EXPONENT, prng(1));
    this.seeded = new Uint8Array(n);
    for (let i = 0; i < n; i++) this.seeded[i] = sizes.next() + 1;
    // Popularity is independent of the seeding order and of the number of memories.
    this.byRank = permutation(n, prng(2));
    this.popularity = new Zipf(n, zipfS, prng(3));
    this.#text = prng(4);
  }

  userId(i: number): string {
    return `u-${this.tag}-${i}`;
  }

  listPath(i: number): string {
    return `/v1/users/${this.userId(i)}/memories?limit=${LIST_LIMIT}`;
  }

  /** A memory of user `i`. */
  memory(i: number, kind?: string): Record<string, unknown> {
    const r = this.#text;
    const pick = <T>(list: readonly T[]): T => list[Math.floor(r() * list.length)] as T;
    const frame = pick(FRAMES);
    const tags = [...new Set([pick(TAGS), ...(r() < 0.5 ? [pick(TAGS)] : [])])];
    return {
      userId: this.userId(i),
      content: frame(pick(FACTS), pick(NAMES), 1 + Math.floor(r() * 300)),
      kind: kind ?? pick(KINDS),
      tags,
      importance: Math.round(r() * 100) / 100,
    };
  }

  get totalSeeded(): number {
    let total = 0;
    for (const c of this.seeded) total += c;
    return total;
  }
}

// ---------------------------------------------------------------------------------------------
// Seeding

interface SeedReport {
  users: number;
  memories: number;
  batches: number;
  connections: number;
  seconds: number;
  memoriesPerSec: number;
  dbBytes: number;
}

async function seed(server: EngramServer, pop: Population, dataDir: string): Promise<SeedReport> {
  let user = 0;
  let batches = 0;
  /** The next batch of up to SEED_BATCH items, whole users only where they fit. */
  const nextBatch = (): Record<string, unknown>[] | null => {
    if (user >= pop.n) return null;
    const items: Record<string, unknown>[] = [];
    while (user < pop.n && items.length + (pop.seeded[user] as number) <= SEED_BATCH) {
      for (let j = 0; j < (pop.seeded[user] as number); j++) items.push(pop.memory(user));
      user++;
    }
    batches++;
    return items;
  };
  const headers = { authorization: `Bearer ${server.key}`, 'content-type': 'application/json' };
  const started = performance.now();
  let lastReport = started;
  const worker = async () => {
    for (let items = nextBatch(); items; items = nextBatch()) {
      const res = await fetch(`${server.base}/v1/memories/batch`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ items }),
      });
      const text = await res.text();
      if (res.status !== 201) throw new Error(`seeding batch: ${res.status} ${text.slice(0, 500)}`);
      if (performance.now() - lastReport > 10_000) {
        lastReport = performance.now();
        process.stderr.write(`cache: seeding… ${user.toLocaleString('en-US')} users\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: SEED_CONNECTIONS }, worker));
  const seconds = (performance.now() - started) / 1000;
  const memories = pop.totalSeeded;
  let dbBytes = 0;
  for (const name of ['engram.db', 'engram.db-wal']) {
    try {
      dbBytes += statSync(join(dataDir, name)).size;
    } catch {
      // absent
    }
  }
  return {
    users: pop.n,
    memories,
    batches,
    connections: SEED_CONNECTIONS,
    seconds,
    memoriesPerSec: memories / seconds,
    dbBytes,
  };
}

// ---------------------------------------------------------------------------------------------
// The Zipf workload

type Source = 'l1' | 'l2' | 'store' | 'stale' | 'none';
const SOURCES: Source[] = ['l1', 'l2', 'store', 'stale', 'none'];

interface WindowStats {
  durationSec: number;
  requests: number;
  reqPerSec: number;
  p50: number;
  p99: number;
  errors: number;
  reads: number;
  writes: number;
  sources: Record<Source, number>;
  readNon2xx: number;
  writeNon2xx: number;
  /**
   * Misses of a user with a write in flight, or sent or acknowledged since the user's previous
   * read answer: what invalidation costs. The other misses are cold, capacity or TTL misses.
   */
  missesAfterWrite: number;
  /** Reads sent after a write's 201 whose answer lacks that write (should be 0). */
  staleAfterAck: number;
  /** Sum of read body sizes. */
  readBytes: number;
  /** Reads and misses (store or stale) per second of the window: bursts show as spikes. */
  readsPerSecond: number[];
  missesPerSecond: number[];
}

interface RequestContext {
  user: number;
  write: boolean;
  /** Time of the user's previous read answer, and whether a write of it was in flight. */
  previousRead: number;
  writing: boolean;
  expect: string | undefined;
}

const emptySources = (): Record<Source, number> => ({ l1: 0, l2: 0, store: 0, stale: 0, none: 0 });

/** Requests of one server: a read/write mix over Zipf-drawn users, and what was answered. */
class Workload {
  readonly #pop: Population;
  readonly #writeRatio: number;
  readonly #random = prng(5);
  readonly #readHeaders: Record<string, string>;
  readonly #writeHeaders: Record<string, string>;
  // Per user: writes in flight, when a write was last sent or answered, when a read was last
  // answered (performance.now()), and the id of the last acknowledged write.
  readonly #writing: Uint16Array;
  readonly #lastWriteAt: Float64Array;
  readonly #lastReadAt: Float64Array;
  readonly #lastWrite: (string | undefined)[];

  constructor(pop: Population, key: string, writeRatio: number) {
    this.#pop = pop;
    this.#writeRatio = writeRatio;
    this.#readHeaders = { authorization: `Bearer ${key}` };
    this.#writeHeaders = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    this.#writing = new Uint16Array(pop.n);
    this.#lastWriteAt = new Float64Array(pop.n);
    this.#lastReadAt = new Float64Array(pop.n);
    this.#lastWrite = new Array(pop.n);
  }

  /**
   * Runs for `durationSec` (the mix), or reads every user once from the least popular to the
   * most popular (`pass`: so that what stays in a bounded L1 is the popular end).
   */
  async run(base: string, how: { durationSec: number } | { pass: true }): Promise<WindowStats> {
    const pop = this.#pop;
    const stats: WindowStats = {
      durationSec: 0,
      requests: 0,
      reqPerSec: 0,
      p50: 0,
      p99: 0,
      errors: 0,
      reads: 0,
      writes: 0,
      sources: emptySources(),
      readNon2xx: 0,
      writeNon2xx: 0,
      missesAfterWrite: 0,
      staleAfterAck: 0,
      readBytes: 0,
      readsPerSecond: [],
      missesPerSecond: [],
    };
    const started = performance.now();
    const pass = 'pass' in how;
    let passRank = pop.n - 1;
    const setupRequest = (req: autocannon.Request, context: object): autocannon.Request => {
      const c = context as RequestContext;
      const user = pass
        ? (pop.byRank[Math.max(0, passRank--)] as number)
        : (pop.byRank[pop.popularity.next()] as number);
      c.user = user;
      c.write = !pass && this.#random() < this.#writeRatio;
      if (c.write) {
        this.#writing[user] = (this.#writing[user] as number) + 1;
        this.#lastWriteAt[user] = performance.now();
        return {
          ...req,
          method: 'POST',
          path: '/v1/memories',
          headers: this.#writeHeaders,
          body: JSON.stringify(pop.memory(user, 'event')),
        };
      }
      c.previousRead = this.#lastReadAt[user] as number;
      c.writing = (this.#writing[user] as number) > 0;
      c.expect = this.#lastWrite[user];
      return {
        ...req,
        method: 'GET',
        path: pop.listPath(user),
        headers: this.#readHeaders,
        body: '',
      };
    };
    const onResponse = (
      status: number,
      body: string,
      context: object,
      headers?: IncomingHttpHeaders,
    ) => {
      const c = context as RequestContext;
      const now = performance.now();
      if (c.write) {
        stats.writes++;
        this.#writing[c.user] = (this.#writing[c.user] as number) - 1;
        this.#lastWriteAt[c.user] = now;
        if (status !== 201) {
          stats.writeNon2xx++;
          return;
        }
        this.#lastWrite[c.user] = (JSON.parse(body) as { id: string }).id;
        return;
      }
      stats.reads++;
      if (status !== 200) {
        stats.readNon2xx++;
        return;
      }
      stats.readBytes += body.length;
      const raw = headerOf(headers, 'engram-cache');
      const source = (typeof raw === 'string' && raw in stats.sources ? raw : 'none') as Source;
      stats.sources[source]++;
      const second = Math.floor((now - started) / 1000);
      stats.readsPerSecond[second] = (stats.readsPerSecond[second] ?? 0) + 1;
      if (source === 'store' || source === 'stale') {
        stats.missesPerSecond[second] = (stats.missesPerSecond[second] ?? 0) + 1;
      }
      if (
        (source === 'store' || source === 'stale') &&
        (c.writing ||
          (this.#writing[c.user] as number) > 0 ||
          (this.#lastWriteAt[c.user] as number) > c.previousRead)
      ) {
        stats.missesAfterWrite++;
      }
      if (c.expect !== undefined && !body.includes(c.expect)) stats.staleAfterAck++;
      this.#lastReadAt[c.user] = now;
    };
    const result = await autocannon({
      url: base,
      connections: CONNECTIONS,
      pipelining: 1,
      ...(pass ? { amount: pop.n } : { duration: how.durationSec }),
      requests: [{ setupRequest, onResponse }],
    });
    stats.durationSec = result.duration;
    stats.requests = result.requests.total;
    stats.reqPerSec = result.requests.total / result.duration;
    stats.p50 = result.latency.p50;
    stats.p99 = result.latency.p99;
    stats.errors = result.errors;
    for (let i = 0; i < stats.readsPerSecond.length; i++) {
      stats.readsPerSecond[i] ??= 0;
      stats.missesPerSecond[i] ??= 0;
    }
    stats.missesPerSecond.length = stats.readsPerSecond.length;
    return stats;
  }
}

/** Hits (l1 + l2) per read answered 200. */
function hitRatio(s: WindowStats): number {
  const answered = SOURCES.reduce((t, k) => t + s.sources[k], 0);
  return answered === 0 ? Number.NaN : (s.sources.l1 + s.sources.l2) / answered;
}

function share(s: WindowStats, k: Source): number {
  const answered = SOURCES.reduce((t, x) => t + s.sources[x], 0);
  return answered === 0 ? Number.NaN : s.sources[k] / answered;
}

function median(values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

// ---------------------------------------------------------------------------------------------
// Redis

interface RedisPlan {
  mode: 'throwaway' | 'shared' | 'none';
  /** A Redis for one configuration; `stop` leaves a shared one alone. */
  start?: () => Promise<{ url: string; pid?: number; stop: () => Promise<void> }>;
  note: string;
}

async function planRedis(choice: CacheOptions['redis']): Promise<RedisPlan> {
  if (choice === 'off') return { mode: 'none', note: 'Redis L2 runs: off (--redis off).' };
  const binary = redisServerBinary();
  if (binary) {
    return {
      mode: 'throwaway',
      start: () => startThrowawayRedis(binary),
      note: `Redis L2 runs: a throwaway \`redis-server\` per configuration (${binary}, free port on 127.0.0.1, \`--save "" --appendonly no\`), started empty and killed after it; the shared Redis is never touched.`,
    };
  }
  const problem = await probeRedis(SHARED_REDIS_URL);
  if (problem === null) {
    return {
      mode: 'shared',
      start: async () => ({ url: SHARED_REDIS_URL, stop: async () => undefined }),
      note: `Redis L2 runs: the shared Redis at ${SHARED_REDIS_URL} (no \`redis-server\` to start a throwaway one). Engram's keys have fixed \`engram:\` prefixes; user ids carry a run tag so no key of an earlier run is read, but this run's keys stay there until their TTL.`,
    };
  }
  const line = `SKIPPED Redis L2: no redis-server on PATH and no Redis at ${SHARED_REDIS_URL} (${problem})`;
  if (choice === 'on') throw new Error(line);
  process.stderr.write(`\n!!!!! ${line} !!!!!\n\n`);
  return { mode: 'none', note: `**${line}**` };
}

// ---------------------------------------------------------------------------------------------
// Formatting

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a';
const pct = (n: number, digits = 2) => (Number.isFinite(n) ? `${fmt(n * 100, digits)}%` : 'n/a');
const mib = (bytes: number) => `${fmt(bytes / MiB)} MiB`;

// ---------------------------------------------------------------------------------------------
// Counters route (when the server has one)

const STATS_PATHS = ['/v1/stats/cache', '/v1/admin/stats'];

/** Server counters of {@link STATS_PATHS} (those this benchmark reads). */
interface ServerCounters {
  l1Hits: number;
  l1Misses: number;
  l2Hits: number;
  l2Misses: number;
  l2Errors: number;
  fills: number;
  fillsJoined: number;
  l1Evictions: number;
  l1Bytes: number;
  warmed: number;
}

/** The counters of a stats answer, or null when it has none. */
function countersOf(stats: unknown): ServerCounters | null {
  const c = (stats as { counters?: Record<string, unknown> } | null)?.counters;
  if (!c || typeof c !== 'object') return null;
  const n = (k: string) => (typeof c[k] === 'number' ? (c[k] as number) : 0);
  return {
    l1Hits: n('l1Hits'),
    l1Misses: n('l1Misses'),
    l2Hits: n('l2Hits'),
    l2Misses: n('l2Misses'),
    l2Errors: n('l2Errors'),
    fills: n('fills'),
    fillsJoined: n('fillsJoined'),
    l1Evictions: n('l1Evictions'),
    l1Bytes: n('l1Bytes'),
    warmed: n('warmed'),
  };
}

/** Counter increases between two answers (l1Bytes: the value after). */
function countersDelta(before: unknown, after: unknown): ServerCounters | null {
  const a = countersOf(before);
  const b = countersOf(after);
  if (!a || !b) return null;
  const d = {} as ServerCounters;
  for (const k of Object.keys(b) as (keyof ServerCounters)[]) d[k] = b[k] - a[k];
  d.l1Bytes = b.l1Bytes;
  return d;
}

/** The first counters route that answers 200, or null. */
async function findStatsPath(server: EngramServer): Promise<string | null> {
  for (const path of STATS_PATHS) {
    const res = await fetch(`${server.base}${path}`, {
      headers: { authorization: `Bearer ${server.key}` },
    }).catch(() => null);
    if (!res) continue;
    await res.arrayBuffer();
    if (res.status === 200) return path;
  }
  return null;
}

async function readStats(server: EngramServer, path: string | null): Promise<unknown> {
  if (!path) return null;
  const res = await fetch(`${server.base}${path}`, {
    headers: { authorization: `Bearer ${server.key}` },
  });
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return text.slice(0, 20_000);
  }
}

// ---------------------------------------------------------------------------------------------
// Hit ratio

interface HitConfig {
  l1Bytes: number;
  redis: boolean;
}

interface HitResult extends HitConfig {
  warmPass: WindowStats;
  warmMix: WindowStats;
  windows: WindowStats[];
  statsPath: string | null;
  statsBefore: unknown;
  statsAfter: unknown;
  /** Server counters over the measured windows (null without a counters route). */
  serverDelta: ServerCounters | null;
  /** Medians over the measured windows. */
  hitRatio: number;
  l1: number;
  l2: number;
  store: number;
  stale: number;
  missesAfterWrite: number;
  hitRatioWithoutAfterWrite: number;
  reqPerSec: number;
  p99: number;
}

async function measureHitRatio(
  config: HitConfig,
  pop: Population,
  snapshot: string,
  redis: RedisPlan,
  options: ScenarioOptions,
  writeRatio: number,
): Promise<HitResult> {
  const label = `L1 ${mib(config.l1Bytes)}${config.redis ? ' + Redis L2' : ''}`;
  const redisServer = config.redis && redis.start ? await redis.start() : null;
  let server: EngramServer | null = null;
  try {
    server = await startEngram(
      'sqlite',
      {
        ENGRAM_CACHE_L1_MAX_BYTES: String(config.l1Bytes),
        REDIS_URL: redisServer?.url ?? '',
      },
      { copyFrom: snapshot },
    );
    const statsPath = await findStatsPath(server);
    const workload = new Workload(pop, server.key, writeRatio);
    const warmPass = await workload.run(server.base, { pass: true });
    process.stderr.write(
      `cache: ${label}: warm pass over ${fmt(warmPass.reads)} users in ${fmt(warmPass.durationSec, 1)} s (${fmt(warmPass.reqPerSec)} req/s, ${pct(hitRatio(warmPass))} hits)\n`,
    );
    const warmMix = await workload.run(server.base, { durationSec: options.warmupSec });
    const statsBefore = await readStats(server, statsPath);
    const windows: WindowStats[] = [];
    for (let run = 1; run <= options.runs; run++) {
      const w = await workload.run(server.base, { durationSec: options.durationSec });
      windows.push(w);
      process.stderr.write(
        `cache: ${label}, run ${run}/${options.runs}: ${fmt(w.reads)} reads, hit ratio ${pct(hitRatio(w))} (l1 ${pct(share(w, 'l1'))}, l2 ${pct(share(w, 'l2'))}, store ${pct(share(w, 'store'))}, after own write ${pct(w.missesAfterWrite / w.reads)}), ${fmt(w.reqPerSec)} req/s, stale-after-ack ${w.staleAfterAck}, non-2xx ${w.readNon2xx + w.writeNon2xx}, misses per second [${w.missesPerSecond.join(' ')}]\n`,
      );
    }
    const statsAfter = await readStats(server, statsPath);
    const of = (f: (w: WindowStats) => number) => median(windows.map(f));
    return {
      ...config,
      warmPass,
      warmMix,
      windows,
      statsPath,
      statsBefore,
      statsAfter,
      serverDelta: countersDelta(statsBefore, statsAfter),
      hitRatio: of(hitRatio),
      l1: of((w) => share(w, 'l1')),
      l2: of((w) => share(w, 'l2')),
      store: of((w) => share(w, 'store')),
      stale: of((w) => share(w, 'stale')),
      missesAfterWrite: of((w) => w.missesAfterWrite / w.reads),
      hitRatioWithoutAfterWrite: of(
        (w) => (w.sources.l1 + w.sources.l2) / (w.reads - w.readNon2xx - w.missesAfterWrite),
      ),
      reqPerSec: of((w) => w.reqPerSec),
      p99: of((w) => w.p99),
    };
  } finally {
    const code = await server?.stop();
    if (code !== undefined && code !== 0 && code !== null) {
      process.stderr.write(`cache: the ${label} server exited with ${code}\n`);
    }
    await redisServer?.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Throughput of a warm read

interface Chosen {
  user: number;
  path: string;
  bytes: number;
  memories: number;
}

/** The seeded user whose list answer is closest to {@link TARGET_BODY_BYTES}. */
async function chooseUser(server: EngramServer, pop: Population): Promise<Chosen> {
  const candidates: number[] = [];
  for (let count = 3; count <= 8; count++) {
    const i = pop.seeded.indexOf(count);
    if (i >= 0) candidates.push(i);
  }
  let best: Chosen | null = null;
  for (const user of candidates) {
    const path = pop.listPath(user);
    const res = await fetch(`${server.base}${path}`, {
      headers: { authorization: `Bearer ${server.key}` },
    });
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${body}`);
    const memories = (JSON.parse(body.toString('utf8')) as { items: unknown[] }).items.length;
    const candidate = { user, path, bytes: body.length, memories };
    if (
      !best ||
      Math.abs(body.length - TARGET_BODY_BYTES) < Math.abs(best.bytes - TARGET_BODY_BYTES)
    )
      best = candidate;
  }
  if (!best) throw new Error('no seeded user with 3–8 memories');
  return best;
}

/** GETs `path` until the answer comes from L1; returns the sources seen. */
async function primeL1(server: EngramServer, chosen: Chosen): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`${server.base}${chosen.path}`, {
      headers: { authorization: `Bearer ${server.key}` },
    });
    const body = Buffer.from(await res.arrayBuffer());
    if (body.length !== chosen.bytes) {
      throw new Error(
        `${chosen.path}: ${body.length} B from ${server.base}, ${chosen.bytes} B before`,
      );
    }
    const source = res.headers.get('engram-cache') ?? 'none';
    seen.push(source);
    if (source === 'l1') return seen;
  }
  throw new Error(`${chosen.path} never answered from L1: ${seen.join(', ')}`);
}

interface Answers {
  bySource: Record<string, number>;
  wrongSize: number;
}

interface ThroughputTarget {
  name: string;
  label: string;
  base: string;
  pid: number;
  engram: boolean;
}

/** CPU time per answered request in one measurement, in µs (null without /proc). */
interface CpuSample {
  serverUsPerReq: number | null;
  generatorUsPerReq: number;
  /** Share of requests the server's `fastPath` counter says it answered before Fastify. */
  fastPathShare: number | null;
  /** Every server counter that moved during the measurement (background work shows here). */
  counterDeltas: Record<string, number> | null;
  /** CPU of the target's own redis-server per request (µs), when it has one. */
  redisUsPerReq: number | null;
}

/** The server's numeric counters, from its counters route; null when it has none. */
async function serverCounters(server: EngramServer): Promise<Record<string, number> | null> {
  const res = await fetch(`${server.base}${STATS_PATHS[0]}`, {
    headers: { authorization: `Bearer ${server.key}` },
  }).catch(() => null);
  if (res?.status !== 200) {
    await res?.arrayBuffer();
    return null;
  }
  const counters = ((await res.json()) as { counters?: Record<string, unknown> }).counters ?? {};
  return Object.fromEntries(
    Object.entries(counters).filter((e): e is [string, number] => typeof e[1] === 'number'),
  );
}

/** Counters that changed between two readings (l1Bytes: the change in bytes held). */
function changed(
  before: Record<string, number> | null,
  after: Record<string, number> | null,
): Record<string, number> | null {
  if (!before || !after) return null;
  return Object.fromEntries(
    Object.entries(after)
      .map(([k, v]) => [k, v - (before[k] ?? 0)] as [string, number])
      .filter(([, d]) => d !== 0),
  );
}

// ---------------------------------------------------------------------------------------------
// The scenario

export async function run(options: ScenarioOptions): Promise<ScenarioResult> {
  const opts = cacheOptions(options.extra);
  const notes: string[] = [];
  const redis = await planRedis(opts.redis);
  const pop = new Population(opts.users, opts.zipf);
  process.stderr.write(
    `cache: ${fmt(pop.n)} users, ${fmt(pop.totalSeeded)} memories to seed, Zipf(${opts.zipf}), ${pct(opts.writeRatio, 0)} writes, Redis: ${redis.mode}\n`,
  );

  const snapshot = mkdtempSync(join(tmpdir(), 'engram-bench-cache-seed-'));
  const forgetSnapshot = deferCleanup(() => rmSync(snapshot, { recursive: true, force: true }));
  const stops: (() => Promise<unknown>)[] = [];
  try {
    // 1. Seeding, into the snapshot directory (later servers start from copies of it).
    const seeder = await startEngram('sqlite', {}, { dataDir: snapshot });
    let seeding: SeedReport;
    try {
      seeding = await seed(seeder, pop, snapshot);
    } finally {
      await seeder.stop();
    }
    process.stderr.write(
      `cache: seeded ${fmt(seeding.memories)} memories of ${fmt(seeding.users)} users in ${fmt(seeding.seconds, 1)} s (${fmt(seeding.memoriesPerSec)} memories/s)\n`,
    );

    // 2. Hit ratio per configuration.
    const configs: HitConfig[] = [];
    for (const withRedis of redis.mode === 'none' ? [false] : [false, true]) {
      for (const l1Bytes of opts.l1Sizes) configs.push({ l1Bytes, redis: withRedis });
    }
    const hits: HitResult[] = [];
    for (const config of configs) {
      hits.push(await measureHitRatio(config, pop, snapshot, redis, options, opts.writeRatio));
    }

    // 3. Throughput of a warm ~2 KB list read against the ceilings, interleaved.
    const engrams: { name: string; label: string; server: EngramServer; redisPid?: number }[] = [];
    const plain = await startEngram('sqlite', {}, { copyFrom: snapshot });
    stops.push(plain.stop);
    engrams.push({ name: 'engram', label: 'engram (L1 64 MiB)', server: plain });
    if (redis.start) {
      const r = await redis.start();
      stops.push(r.stop);
      const withRedis = await startEngram('sqlite', { REDIS_URL: r.url }, { copyFrom: snapshot });
      stops.push(withRedis.stop);
      engrams.push({
        name: 'engram+redis',
        label: 'engram (L1 64 MiB + Redis L2)',
        server: withRedis,
        ...(r.pid === undefined ? {} : { redisPid: r.pid }),
      });
    }
    const chosen = await chooseUser(plain, pop);
    const primed: Record<string, string[]> = {};
    for (const e of engrams) primed[e.name] = await primeL1(e.server, chosen);
    process.stderr.write(
      `cache: warm read ${chosen.path}: ${chosen.bytes} B, ${chosen.memories} memories\n`,
    );
    const payloads = { [chosen.path]: chosen.bytes };
    const ceiling = await startCeiling(payloads);
    stops.push(ceiling.stop);
    const fastifyCeiling = await startCeiling(payloads, 'fastify');
    stops.push(fastifyCeiling.stop);
    const targets: ThroughputTarget[] = [
      {
        name: 'ceiling',
        label: 'node:http ceiling',
        base: ceiling.base,
        pid: ceiling.pid,
        engram: false,
      },
      {
        name: 'fastify',
        label: 'bare Fastify ceiling',
        base: fastifyCeiling.base,
        pid: fastifyCeiling.pid,
        engram: false,
      },
      ...engrams.map((e) => ({
        name: e.name,
        label: e.label,
        base: e.server.base,
        pid: e.server.pid,
        engram: true,
      })),
    ];
    const key = plain.key;
    // Same tenant key in every copy of the snapshot; ceilings ignore it but get the same bytes.
    const samples = new Map<string, LoadSample[]>(targets.map((t) => [t.name, []]));
    const answers = new Map<string, Answers>(
      targets.map((t) => [t.name, { bySource: {}, wrongSize: 0 }]),
    );
    const cpu = new Map<string, CpuSample[]>(targets.map((t) => [t.name, []]));
    for (let round = 1; round <= options.runs; round++) {
      // Interleaved, and in reverse order every other run, so drift and order hit all alike.
      for (const t of round % 2 === 1 ? targets : [...targets].reverse()) {
        const engram = engrams.find((e) => e.name === t.name);
        const server = engram?.server;
        const tally = answers.get(t.name) as Answers;
        let counting = false;
        const spec: LoadSpec = {
          path: chosen.path,
          method: 'GET',
          headers: { authorization: `Bearer ${server?.key ?? key}` },
          connections: CONNECTIONS,
          itemsPerRequest: chosen.memories,
          onResponse: (status, header, body) => {
            if (!counting || status !== 200) return;
            const source = t.engram ? (header('engram-cache') ?? 'none') : 'n/a';
            tally.bySource[source] = (tally.bySource[source] ?? 0) + 1;
            if (body.length !== chosen.bytes) tally.wrongSize++;
          },
        };
        await load(t.base, spec, options.warmupSec);
        const countersBefore = server ? await serverCounters(server) : null;
        counting = true;
        const serverBefore = processCpuMs(t.pid);
        const redisBefore = engram?.redisPid === undefined ? null : processCpuMs(engram.redisPid);
        const generatorBefore = selfCpuMs();
        const sample = await load(t.base, spec, options.durationSec);
        const generatorMs = selfCpuMs() - generatorBefore;
        const serverAfter = processCpuMs(t.pid);
        const redisAfter = engram?.redisPid === undefined ? null : processCpuMs(engram.redisPid);
        counting = false;
        const countersAfter = server ? await serverCounters(server) : null;
        const deltas = changed(countersBefore, countersAfter);
        samples.get(t.name)?.push(sample);
        const perReq = (ms: number) => (ms * 1000) / Math.max(1, sample.total);
        const cpuSample: CpuSample = {
          serverUsPerReq:
            serverBefore === null || serverAfter === null
              ? null
              : perReq(serverAfter - serverBefore),
          generatorUsPerReq: perReq(generatorMs),
          fastPathShare:
            deltas && countersAfter && 'fastPath' in countersAfter
              ? (deltas.fastPath ?? 0) / Math.max(1, sample.total)
              : null,
          counterDeltas: deltas,
          redisUsPerReq:
            redisBefore === null || redisAfter === null ? null : perReq(redisAfter - redisBefore),
        };
        const background = Object.entries(deltas ?? {}).filter(
          ([k]) => k !== 'fastPath' && k !== 'l1Hits',
        );
        cpu.get(t.name)?.push(cpuSample);
        process.stderr.write(
          `cache: warm read, ${t.label}, run ${round}/${options.runs}: ${fmt(sample.reqPerSec)} req/s, p50 ${sample.p50} ms, p99 ${sample.p99} ms, server CPU ${fmt(cpuSample.serverUsPerReq ?? Number.NaN, 1)} µs/req, generator CPU ${fmt(cpuSample.generatorUsPerReq, 1)} µs/req${cpuSample.redisUsPerReq === null ? '' : `, redis-server CPU ${fmt(cpuSample.redisUsPerReq, 2)} µs/req`}${cpuSample.fastPathShare === null ? '' : `, fast path ${pct(cpuSample.fastPathShare, 1)}`}, errors ${sample.errors}, non-2xx ${sample.non2xx}${background.length ? `, other counters moved: ${background.map(([k, v]) => `${k} ${v}`).join(', ')}` : ''}\n`,
        );
      }
    }
    const summary: Record<string, LoadSummary> = Object.fromEntries(
      [...samples].map(([name, list]) => [name, summarize(list)]),
    );

    // ----- Report
    const top = summary.ceiling as LoadSummary;
    const bareFastify = summary.fastify as LoadSummary;
    const nonL1 = (name: string) => {
      const a = answers.get(name) as Answers;
      return Object.entries(a.bySource)
        .filter(([s]) => s !== 'l1')
        .reduce((t, [, n]) => t + n, 0);
    };
    const cpuOf = (name: string) => {
      const list = cpu.get(name) ?? [];
      return {
        server: median(list.map((c) => c.serverUsPerReq ?? Number.NaN)),
        generator: median(list.map((c) => c.generatorUsPerReq)),
        fastPath: median(list.map((c) => c.fastPathShare ?? Number.NaN)),
      };
    };
    const topCpu = cpuOf('ceiling').server;
    const throughputRows = targets.map((t) => {
      const s = summary[t.name] as LoadSummary;
      const a = answers.get(t.name) as Answers;
      const c = cpuOf(t.name);
      return [
        t.label,
        fmt(s.reqPerSec),
        fmt(s.p50),
        fmt(s.p97_5),
        fmt(s.p99),
        fmt(s.reqPerSec / top.reqPerSec, 3),
        fmt(s.reqPerSec / bareFastify.reqPerSec, 3),
        fmt(c.server, 1),
        fmt(c.server - topCpu, 1),
        fmt(c.generator, 1),
        t.engram ? pct(c.fastPath, 1) : '—',
        t.engram
          ? `${fmt(nonL1(t.name))} of ${fmt(s.samples.reduce((x, y) => x + y.total, 0))}`
          : '—',
        String(a.wrongSize),
        String(s.errors),
        String(s.non2xx),
      ];
    });

    const hitRows = hits.map((h) => [
      mib(h.l1Bytes),
      h.redis ? 'on' : 'off',
      `${fmt(h.warmPass.durationSec, 1)} s`,
      fmt(h.windows.reduce((t, w) => t + w.reads, 0)),
      fmt(h.windows.reduce((t, w) => t + w.writes, 0)),
      pct(h.hitRatio),
      h.windows.map((w) => pct(hitRatio(w), 1)).join(' / '),
      pct(h.l1),
      h.redis ? pct(h.l2) : '—',
      pct(h.store),
      pct(h.stale),
      pct(h.missesAfterWrite),
      pct(h.hitRatioWithoutAfterWrite),
      fmt(h.reqPerSec),
      fmt(h.p99),
      String(h.windows.reduce((t, w) => t + w.staleAfterAck, 0)),
      String(h.windows.reduce((t, w) => t + w.readNon2xx + w.writeNon2xx + w.errors, 0)),
      h.serverDelta ? mib(h.serverDelta.l1Bytes) : 'n/a',
      h.serverDelta ? fmt(h.serverDelta.l1Evictions) : 'n/a',
      h.serverDelta ? fmt(h.serverDelta.fills) : 'n/a',
      h.serverDelta ? fmt(h.serverDelta.l2Errors) : 'n/a',
    ]);

    const workingSet = hits[0]?.warmPass.readBytes ?? 0;
    const entryOverhead = 160 + 2 * `list/default/${pop.userId(0)}/${'x'.repeat(22)}`.length;
    const meanBody = workingSet / pop.n;
    const l1Entries = (bytes: number) => bytes / (meanBody + entryOverhead);
    const expectedTop = (entries: number) =>
      pop.popularity.expect((rank) => (rank < entries ? 1 : 0));

    const mainRows: string[][] = [];
    for (const h of hits) {
      mainRows.push([
        `hit ratio after warm-up, L1 ${mib(h.l1Bytes)}${h.redis ? ' + Redis L2' : ', no Redis'}`,
        pct(h.hitRatio),
        `≥ ${pct(HIT_RATIO_TARGET, 0)}`,
        h.hitRatio >= HIT_RATIO_TARGET ? 'yes' : '**no**',
      ]);
    }
    for (const e of engrams) {
      const ratio = (summary[e.name] as LoadSummary).reqPerSec / top.reqPerSec;
      mainRows.push([
        `warm ${chosen.bytes} B list read, ${e.label}, of node:http`,
        fmt(ratio, 3),
        `≥ ${fmt(THROUGHPUT_TARGET, 2)}`,
        ratio >= THROUGHPUT_TARGET ? 'yes' : '**no**',
      ]);
    }

    notes.push(
      `Workload: ${fmt(pop.n)} users, popularity Zipf(${opts.zipf}) (the most popular user draws ${pct(pop.popularity.probability(0))} of requests, the top 1% of users ${pct(expectedTop(pop.n / 100))}), ${pct(1 - opts.writeRatio, 0)} reads of \`GET /v1/users/{u}/memories?limit=${LIST_LIMIT}\` and ${pct(opts.writeRatio, 0)} writes (\`POST /v1/memories\`, one new memory) of Zipf-drawn users, ${CONNECTIONS} keep-alive connections (autocannon).`,
      `Hit ratio = (l1 + l2) / reads answered 200, from the \`engram-cache\` header of every read (l1, l2 hits; store, stale misses); ${hits[0]?.statsPath ? `the server's counters (${hits[0].statsPath}) were read before and after the measured windows: "L1 held" is l1Bytes after, "L1 evictions", "L2 errors" and "fills" are increases (server counters also count the refresh-ahead and warming loads, which are not requests)` : `the server exposes no counters route (tried ${STATS_PATHS.join(', ')}), so only client-side figures`}. Figures are medians of ${options.runs} windows of ${options.durationSec} s.`,
      `Warm-up per configuration: a fresh server on a copy of the seeded data, every user read once from the least to the most popular, then ${options.warmupSec} s of the workload.`,
      `"after own write": misses (store or stale) of a user with a write in flight, or sent or answered since that user's previous read answer — what invalidation costs. "excl. after-write" is the hit ratio without those reads: what cold, capacity and TTL misses alone leave.`,
      `"stale after ack": reads sent after a write's 201 whose answer lacks that memory (must be 0).`,
      `Working set: ${mib(workingSet)} of list bodies (mean ${fmt(meanBody)} B) plus ~${entryOverhead} B of L1 bookkeeping per entry; ${opts.l1Sizes.map((bytes) => `L1 ${mib(bytes)} holds ≈ ${fmt(Math.min(pop.n, l1Entries(bytes)))} of ${fmt(pop.n)} users' first pages (a cache of the most popular ones that size would serve ${pct(expectedTop(l1Entries(bytes)))} of reads)`).join('; ')}.`,
      redis.note,
      `Warm read: ${chosen.path} (${chosen.memories} memories, ${chosen.bytes} B, every answer checked for that size), ${CONNECTIONS} connections, primed until \`engram-cache: l1\` before measuring; ceilings answer a body of exactly ${chosen.bytes} B to the same GET with the same Authorization header; runs interleaved (node:http, Fastify, Engram…, then the same in reverse order), medians of ${options.runs}.`,
      '"before Fastify": share of the measured requests that the server\'s `fastPath` counter (GET /v1/stats/cache, read before and after) says were answered from L1 straight from node:http; n/a when the counter does not exist.',
      'Server CPU µs/req: user + system CPU time of the server process (all threads, /proc/<pid>/stat, 10 ms ticks) during the measurement, per request answered; generator CPU: the same for the bench process running autocannon. Unlike req/s, these do not depend on how the 2 cores were shared; with both cores busy, req/s ≈ 2 s / (generator + server µs), so the ratio to node:http follows (G + C_ceiling) / (G + C_engram).',
      'Generator (autocannon, in the bench process) and servers share the 2 cores: compare ratios, not absolute req/s, across machines. Latencies are whole milliseconds.',
    );

    const sections: ReportSection[] = [
      {
        heading: 'Hit ratio (Zipf workload)',
        columns: [
          'L1 max',
          'Redis L2',
          'warm pass',
          'reads',
          'writes',
          'hit ratio',
          'per run',
          'L1 hits',
          'L2 hits',
          'store',
          'stale',
          'after own write',
          'hit ratio excl. after-write',
          'req/s',
          'p99 ms',
          'stale after ack',
          'errors + non-2xx',
          'L1 held',
          'L1 evictions',
          'fills',
          'L2 errors',
        ],
        rows: hitRows,
        notes: ['Shares are of reads; medians over the measured windows; counts are totals.'],
      },
      {
        heading: `Warm memory-list read (${chosen.bytes} B) against the ceilings`,
        columns: [
          'target',
          'req/s',
          'p50 ms',
          'p97.5 ms',
          'p99 ms',
          'of node:http',
          'of fastify',
          'server CPU µs/req',
          'µs/req over node:http',
          'generator CPU µs/req',
          'before Fastify',
          'non-l1 answers',
          'wrong size',
          'errors',
          'non-2xx',
        ],
        rows: throughputRows,
      },
      {
        heading: 'Seeding',
        columns: ['users', 'memories', 'batches', 'connections', 'seconds', 'memories/s', 'SQLite'],
        rows: [
          [
            fmt(seeding.users),
            fmt(seeding.memories),
            `${fmt(seeding.batches)} × ≤ ${fmt(SEED_BATCH)}`,
            String(seeding.connections),
            fmt(seeding.seconds, 1),
            fmt(seeding.memoriesPerSec),
            mib(seeding.dbBytes),
          ],
        ],
        notes: [
          `POST /v1/memories/batch, whole users per batch, memories per user Zipf(${SIZE_EXPONENT}) over 1–${MAX_PER_USER}; one server, then every measured server starts from a copy of its data directory.`,
        ],
      },
    ];

    return {
      title: 'Engram cache: hit ratio and warm-read throughput',
      columns: ['figure', 'measured', 'target', 'met'],
      rows: mainRows,
      notes,
      sections,
      data: {
        options: opts,
        redis: { mode: redis.mode },
        seeding,
        workingSetBodyBytes: workingSet,
        hitRatio: hits,
        throughput: {
          chosen,
          primed,
          payloads,
          connections: CONNECTIONS,
          results: summary,
          cpu: Object.fromEntries(cpu),
          answers: Object.fromEntries(answers),
        },
      },
    };
  } finally {
    for (const stop of stops.reverse()) {
      const code = await stop().catch((err: unknown) => {
        process.stderr.write(`stopping a server failed: ${(err as Error).message}\n`);
        return null;
      });
      if (typeof code === 'number' && code !== 0)
        process.stderr.write(`a server exited with ${code}\n`);
    }
    rmSync(snapshot, { recursive: true, force: true });
    forgetSnapshot();
  }
}
