/**
 * Session starts. (1) Preload latency per store: users with `--memories` memories each, seeded
 * through batches; a fresh server on that data (nothing warm), then per user a first
 * `POST /v1/sessions` (cold: the bundle from store queries) and, once the index the start built
 * in the background is held, a second one (warm: from the index), one request at a time; the
 * server's own times from its `Server-Timing` header. (2) Session-start throughput over HTTP
 * for warm users, next to the node:http ceiling answering a body of the same size and to the
 * warm cached memory-list read of the same server (the fast path), interleaved in the same run.
 * (3) The bundle alone in process (`Preloader.bundle` on a held index): no HTTP, no writes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { UserIndex } from '../src/search/user-index.ts';
import { Preloader } from '../src/sessions/preload.ts';
import { startCeiling } from './lib/ceiling.ts';
import { deferCleanup } from './lib/cleanup.ts';
import { processCpuMs } from './lib/cpu.ts';
import { type LoadSample, type LoadSpec, load, median, summarize } from './lib/load.ts';
import { createBenchSchema, probePostgres, vacuumAnalyze } from './lib/postgres.ts';
import type { ReportSection, ScenarioOptions, ScenarioResult } from './lib/report.ts';
import { type EngramServer, type StoreKind, startEngram } from './lib/server-process.ts';
import { Corpus } from './lib/text-corpus.ts';
import { permutation, prng } from './lib/zipf.ts';

/** Words of a session's opening context. */
const CONTEXT_WORDS = 5;
/** Items per seeding batch (the API's most). */
const BATCH_ITEMS = 1000;
/** Seeding batches in flight at once. */
const SEED_CONCURRENCY = 2;
/** Users started cold then warm, per store (a shuffled sample when more are seeded). */
const COLD_SAMPLE = 100;
/** Throwaway users (no memories) started before the cold sample, so code paths are compiled. */
const JIT_WARMUP_STARTS = 30;
/** Wait before each look for the warm index after a cold start, and the most looks. */
const WARM_POLL_MS = 10;
const WARM_POLL_TRIES = 500;
/** Memories per user seeded pinned (every PIN_EVERY-th) and as a session summary (every 20th). */
const PIN_EVERY = 50;
const SESSION_LENGTH = 20;
/** Bundles built per run in process. */
const BUNDLES_PER_RUN = 5_000;
/** The servers' default ENGRAM_SEARCH_INDEX_MAX_BYTES. */
const INDEX_BUDGET_BYTES = 134_217_728;
/** Page size of the cached read. */
const READ_LIMIT = 10;
/**
 * Settings of every server: no warming at boot or ahead of time (nothing is warm until a
 * request makes it so), and no session expires during the run (no sweeper work in a window).
 */
const SERVER_ENV = {
  ENGRAM_WARM_BOOT_USERS: '0',
  ENGRAM_WARM_AHEAD_USERS: '0',
  ENGRAM_SESSION_TIMEOUT_MIN_MS: '1800000',
};

function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number;
}

function p50p99(values: number[]): { p50: number; p99: number } {
  const sorted = Float64Array.from(values).sort();
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
}

const userId = (u: number): string => `user-${u}`;

/** The parts of a session start's `Server-Timing` header. */
interface Timing {
  app: number;
  preload: number;
  source: string;
}

function parseTiming(header: string | null | undefined): Timing | null {
  if (!header) return null;
  const app = /(?:^|,)\s*app;dur=([\d.]+)/.exec(header);
  const preload = /(?:^|,)\s*preload;dur=([\d.]+)(?:;desc="([^"]*)")?/.exec(header);
  if (!app || !preload) return null;
  return { app: Number(app[1]), preload: Number(preload[1]), source: preload[2] ?? '' };
}

// ---------------------------------------------------------------------------------------------
// Seeding

/**
 * The memories of user `u`, as batch items: sessions of 20, each closed by a summary. No
 * `createdAt` (created now, in order): back-dated memories seeded markedly slower in a trial.
 */
function itemsOf(corpus: Corpus, u: number, perUser: number): object[] {
  return corpus.rows('bench', userId(u), perUser).map((r, i) => ({
    userId: r.userId,
    sessionId: r.sessionId ?? undefined,
    content: r.content,
    kind: i % SESSION_LENGTH === SESSION_LENGTH - 1 ? 'summary' : 'message',
    importance: r.importance,
    pinned: i % PIN_EVERY === 3,
  }));
}

async function seed(
  server: EngramServer,
  users: number,
  perUser: number,
): Promise<{ memories: number; seconds: number }> {
  const corpus = new Corpus(perUser);
  const headers = { authorization: `Bearer ${server.key}`, 'content-type': 'application/json' };
  const t0 = performance.now();
  let next = 0;
  let memories = 0;
  let reported = t0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const u = next++;
      if (u >= users) return;
      // Items are made here, in order of users, so every run seeds the same text.
      const items = itemsOf(corpus, u, perUser);
      for (let i = 0; i < items.length; i += BATCH_ITEMS) {
        const res = await fetch(`${server.base}/v1/memories/batch`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ items: items.slice(i, i + BATCH_ITEMS) }),
        });
        if (res.status !== 201) throw new Error(`seeding: ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
        memories += Math.min(BATCH_ITEMS, items.length - i);
      }
      if (performance.now() - reported > 10_000) {
        reported = performance.now();
        process.stderr.write(
          `sessions: ${server.store}: seeded ${fmt(memories)} memories (${u + 1}/${users} users)\n`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: SEED_CONCURRENCY }, worker));
  return { memories, seconds: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// Cold and warm starts, one at a time

interface StartSample extends Timing {
  status: number;
  clientMs: number;
  bytes: number;
}

async function startSession(
  server: EngramServer,
  user: string,
  context: string,
): Promise<StartSample> {
  const t0 = performance.now();
  const res = await fetch(`${server.base}/v1/sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ userId: user, context }),
  });
  const body = await res.arrayBuffer();
  const clientMs = performance.now() - t0;
  if (res.status !== 201) {
    throw new Error(`POST /v1/sessions ${user}: ${res.status} ${Buffer.from(body)}`);
  }
  const timing = parseTiming(res.headers.get('server-timing'));
  if (!timing) {
    throw new Error(
      `POST /v1/sessions: no app/preload Server-Timing: ${res.headers.get('server-timing')}`,
    );
  }
  return { ...timing, status: res.status, clientMs, bytes: body.byteLength };
}

interface LatencyFigures {
  cold: StartSample[];
  warm: StartSample[];
  /** First starts of never-touched users that did not answer desc="store". */
  coldNotStore: number;
  /** Starts answering "store" after the cold one, before the index was held (all users). */
  extraStoreStarts: number;
  /** Users whose index was never held within the polling time. */
  neverWarm: number;
  /** Warm samples (the start after the first "index" answer) that did not answer "index". */
  warmNotIndex: number;
  /** Milliseconds from the cold start's answer to the first "index" answer, per user. */
  warmAfterMs: number[];
  /** Users in the order they were started (the last ones' indexes are the most recent). */
  order: number[];
}

async function latencyPhase(
  server: EngramServer,
  users: number,
  perUser: number,
): Promise<LatencyFigures> {
  const corpus = new Corpus(perUser + 1);
  for (let i = 0; i < JIT_WARMUP_STARTS; i++) {
    await startSession(server, `jit-warmup-${i}`, corpus.query(CONTEXT_WORDS));
  }
  // A shuffled sample of the users (all of them up to COLD_SAMPLE).
  const order = [...permutation(users, prng(7)).subarray(0, COLD_SAMPLE)];
  const figures: LatencyFigures = {
    cold: [],
    warm: [],
    coldNotStore: 0,
    extraStoreStarts: 0,
    neverWarm: 0,
    warmNotIndex: 0,
    warmAfterMs: [],
    order,
  };
  let reported = performance.now();
  for (const [n, u] of order.entries()) {
    const cold = await startSession(server, userId(u), corpus.query(CONTEXT_WORDS));
    const coldAt = performance.now();
    if (cold.source === 'store') figures.cold.push(cold);
    else figures.coldNotStore++;
    // Poll until a start answers from the index. That first answer is not the sample: it may
    // have waited for the tail of the background build (its last chunk, then the index is
    // set), so the warm sample is the next start, once nothing is building.
    let held = false;
    for (let tries = 0; tries < WARM_POLL_TRIES && !held; tries++) {
      await sleep(WARM_POLL_MS);
      const s = await startSession(server, userId(u), corpus.query(CONTEXT_WORDS));
      if (s.source === 'index') {
        held = true;
        figures.warmAfterMs.push(performance.now() - coldAt - s.clientMs);
      } else figures.extraStoreStarts++;
    }
    if (held) {
      await sleep(WARM_POLL_MS);
      const warm = await startSession(server, userId(u), corpus.query(CONTEXT_WORDS));
      if (warm.source === 'index') figures.warm.push(warm);
      else figures.warmNotIndex++;
    } else figures.neverWarm++;
    if (performance.now() - reported > 10_000) {
      reported = performance.now();
      process.stderr.write(
        `sessions: ${server.store}: cold/warm starts, ${n + 1}/${order.length} users\n`,
      );
    }
  }
  return figures;
}

// ---------------------------------------------------------------------------------------------
// Throughput

interface Target {
  name: string;
  label: string;
  base: string;
  spec: LoadSpec;
  /** Before each measurement: resets what `onResponse` gathers. */
  begin: () => void;
  /** For session starts: the server whose index counters are read around each window. */
  server?: EngramServer;
  /** The process answering (its CPU time is read around each window). */
  pid: number;
}

interface Tally {
  appMs: number[];
  bySource: Record<string, number>;
  counting: boolean;
}

function newTally(): Tally {
  return { appMs: [], bySource: {}, counting: false };
}

/** The server's search-index figures (GET /v1/stats/cache). */
interface IndexStats {
  indexes: number;
  bytes: number;
  builds: number;
  drops: number;
}

async function indexStats(server: EngramServer): Promise<IndexStats> {
  const res = await fetch(`${server.base}/v1/stats/cache`, {
    headers: { authorization: `Bearer ${server.key}` },
  });
  if (res.status !== 200) throw new Error(`GET /v1/stats/cache: ${res.status} ${await res.text()}`);
  const { search } = (await res.json()) as { search: IndexStats };
  return {
    indexes: search.indexes,
    bytes: search.bytes,
    builds: search.builds,
    drops: search.drops,
  };
}

/**
 * The users whose index the server holds after the latency phase: all of them when nothing was
 * evicted, else the most recently started 90% of those held (the LRU keeps the newest; the
 * throwaway users' indexes, the least recently used, were the first to go), each checked by a
 * start answering desc="index".
 */
async function warmSet(
  server: EngramServer,
  latency: LatencyFigures,
  contexts: string[],
): Promise<{ users: number[]; held: IndexStats; evicted: boolean }> {
  const held = await indexStats(server);
  const order = latency.order;
  const evicted = held.indexes < order.length + JIT_WARMUP_STARTS;
  const take = evicted ? Math.floor(Math.min(held.indexes, order.length) * 0.9) : order.length;
  const users: number[] = [];
  for (const [i, u] of order.slice(order.length - take).entries()) {
    const s = await startSession(server, userId(u), contexts[i % contexts.length] as string);
    if (s.source === 'index') users.push(u);
  }
  if (users.length === 0) throw new Error(`${server.store}: no user's index is held`);
  return { users, held, evicted };
}

interface StoreThroughput {
  starts: ReturnType<typeof summarize>;
  reads: ReturnType<typeof summarize>;
  startAppP50: number;
  startAppP99: number;
  startSources: Record<string, number>;
  readSources: Record<string, number>;
  startBytes: number;
  readBytes: number;
  /** Users drawn from, and the server's index figures before the throughput part. */
  warmUsers: number;
  held: IndexStats;
  /** Whether indexes were evicted during the cold/warm part (more users than the budget). */
  evicted: boolean;
  /** Index builds and drops during the measured start windows (0 when all stayed warm). */
  builds: number;
  drops: number;
  /** Server process CPU per answered request (µs; medians over runs): starts, cached reads. */
  startCpuUs: number;
  readCpuUs: number;
}

/** GETs every user's first page until each answers from L1; returns the largest answer. */
async function primeReads(server: EngramServer, users: number[]): Promise<number> {
  let bytes = 0;
  for (const u of users) {
    let source = '';
    for (let i = 0; i < 20 && source !== 'l1'; i++) {
      const res = await fetch(`${server.base}/v1/users/${userId(u)}/memories?limit=${READ_LIMIT}`, {
        headers: { authorization: `Bearer ${server.key}` },
      });
      const body = await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`GET memories: ${res.status} ${Buffer.from(body)}`);
      source = res.headers.get('engram-cache') ?? 'none';
      bytes = Math.max(bytes, body.byteLength);
    }
    if (source !== 'l1') throw new Error(`${userId(u)}: the list read never answered from L1`);
  }
  return bytes;
}

/** Targets of one store's server: session starts, and the warm cached read. */
function storeTargets(
  server: EngramServer,
  users: number[],
  connections: number,
  contexts: string[],
  starts: Tally,
  reads: Tally,
): Target[] {
  const random = prng(11);
  const pick = () => users[Math.floor(random() * users.length)] as number;
  const startSpec: LoadSpec = {
    path: '/v1/sessions',
    method: 'POST',
    headers: { authorization: `Bearer ${server.key}`, 'content-type': 'application/json' },
    body: (n) =>
      JSON.stringify({ userId: userId(pick()), context: contexts[n % contexts.length] as string }),
    connections,
    itemsPerRequest: 1,
    onResponse: (status, header) => {
      if (!starts.counting || status !== 201) return;
      const t = parseTiming(header('server-timing'));
      if (!t) return;
      starts.appMs.push(t.app);
      starts.bySource[t.source] = (starts.bySource[t.source] ?? 0) + 1;
    },
  };
  const readSpec: LoadSpec = {
    path: `/v1/users/${userId(users[0] as number)}/memories?limit=${READ_LIMIT}`,
    pathOf: () => `/v1/users/${userId(pick())}/memories?limit=${READ_LIMIT}`,
    method: 'GET',
    headers: { authorization: `Bearer ${server.key}` },
    connections,
    itemsPerRequest: READ_LIMIT,
    onResponse: (status, header) => {
      if (!reads.counting || status !== 200) return;
      const source = header('engram-cache') ?? 'none';
      reads.bySource[source] = (reads.bySource[source] ?? 0) + 1;
    },
  };
  const reset = (t: Tally) => () => {
    t.appMs.length = 0;
    t.counting = false;
  };
  return [
    {
      name: `${server.store}-starts`,
      label: `engram ${server.store}: session start`,
      base: server.base,
      spec: startSpec,
      begin: reset(starts),
      server,
      pid: server.pid,
    },
    {
      name: `${server.store}-reads`,
      label: `engram ${server.store}: cached read`,
      base: server.base,
      spec: readSpec,
      begin: reset(reads),
      pid: server.pid,
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// The bundle alone, in process

interface InProcessFigure {
  memories: number;
  /** The index's own estimate of its size (what the server's index budget counts). */
  indexBytes: number;
  p50: number;
  p99: number;
  items: number;
}

async function inProcessBundles(perUser: number, runs: number): Promise<InProcessFigure> {
  const corpus = new Corpus(perUser);
  const rows = corpus.rows('bench', 'user-0', perUser).map((r, i) => ({
    ...r,
    kind: i % SESSION_LENGTH === SESSION_LENGTH - 1 ? 'summary' : 'message',
    pinned: i % PIN_EVERY === 3,
  }));
  const index = new UserIndex(1, rows);
  // The preloader asks the search service for a held index only: the store is never touched.
  const search = { peekIndex: () => index, indexOf: async () => index };
  const preloader = new Preloader(
    {} as never,
    search as never,
    30 * 86_400_000,
    0,
    () => undefined,
  );
  const contexts = Array.from({ length: 1000 }, () => corpus.query(CONTEXT_WORDS));
  const p50s: number[] = [];
  const p99s: number[] = [];
  let items = 0;
  for (let r = 0; r < runs; r++) {
    for (let i = 0; i < BUNDLES_PER_RUN; i++) {
      await preloader.bundle(
        'bench',
        'user-0',
        contexts[i % contexts.length] as string,
        4000,
        Date.now(),
      );
    }
    const times = new Float64Array(BUNDLES_PER_RUN);
    for (let i = 0; i < BUNDLES_PER_RUN; i++) {
      const context = contexts[i % contexts.length] as string;
      const t0 = process.hrtime.bigint();
      const bundle = await preloader.bundle('bench', 'user-0', context, 4000, Date.now());
      times[i] = Number(process.hrtime.bigint() - t0) / 1e6;
      items += bundle.items.length;
    }
    times.sort();
    p50s.push(percentile(times, 0.5));
    p99s.push(percentile(times, 0.99));
  }
  return {
    memories: perUser,
    indexBytes: index.bytes,
    p50: median(p50s),
    p99: median(p99s),
    items: items / (runs * BUNDLES_PER_RUN),
  };
}

// ---------------------------------------------------------------------------------------------
// The scenario

const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : '—';
const ms = (n: number): string => (Number.isFinite(n) ? n.toFixed(3) : '—');
const share = (part: number, whole: number): string =>
  whole === 0 ? '—' : `${((100 * part) / whole).toFixed(1)}%`;

interface StoreRun {
  store: StoreKind;
  seeding: { memories: number; seconds: number };
  latency: LatencyFigures;
  server: EngramServer;
}

/** Seeds a store through a first server, stops it, and starts a fresh one on the same data. */
async function prepareStore(
  store: StoreKind,
  users: number,
  perUser: number,
): Promise<{ server: EngramServer; seeding: { memories: number; seconds: number } }> {
  let env: Record<string, string> = { ...SERVER_ENV };
  let schema: Awaited<ReturnType<typeof createBenchSchema>> | null = null;
  let data: { dataDir?: string } = {};
  if (store === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'engram-bench-sessions-'));
    deferCleanup(() => rmSync(dir, { recursive: true, force: true }));
    data = { dataDir: dir };
  } else {
    // Our own schema, named in DATABASE_URL: the servers' throwaway schemas stay empty, and
    // stopping the seeding server drops its schema, not this one.
    schema = await createBenchSchema();
    deferCleanup(schema.drop);
    env = { ...env, DATABASE_URL: schema.url };
  }
  const seeder = await startEngram(store, env, data);
  let seeding: { memories: number; seconds: number };
  try {
    seeding = await seed(seeder, users, perUser);
  } finally {
    await seeder.stop();
  }
  if (schema) await vacuumAnalyze(schema.url, schema.name);
  process.stderr.write(
    `sessions: ${store}: seeded ${fmt(seeding.memories)} memories of ${fmt(users)} users in ${fmt(seeding.seconds, 1)} s; restarting\n`,
  );
  return { server: await startEngram(store, env, data), seeding };
}

export async function run(opts: ScenarioOptions): Promise<ScenarioResult> {
  const users = Math.round(Number(opts.extra?.users ?? 200));
  const perUser = Math.round(Number(opts.extra?.memories ?? 1000));
  const connections = Math.round(Number(opts.extra?.connections ?? 8));
  for (const [name, v] of Object.entries({ users, memories: perUser, connections })) {
    if (!Number.isFinite(v) || v < 1) throw new RangeError(`--${name} must be ≥ 1`);
  }
  const notes: string[] = [];
  const pgProblem = await probePostgres();
  const stores: StoreKind[] = pgProblem === null ? ['sqlite', 'postgres'] : ['sqlite'];
  if (pgProblem !== null) {
    process.stderr.write(`\n!!!!! SKIPPED postgres: ${pgProblem} !!!!!\n\n`);
    notes.push(`**SKIPPED PostgreSQL**: not reachable (${pgProblem}).`);
  }

  const inProcess = await inProcessBundles(perUser, opts.runs);
  process.stderr.write(
    `sessions: in-process bundle, ${fmt(perUser)} memories: p50 ${ms(inProcess.p50)} ms, p99 ${ms(inProcess.p99)} ms\n`,
  );

  const runsByStore: StoreRun[] = [];
  const stops: Array<() => Promise<unknown>> = [];
  try {
    // 1. Seeding, both stores at once (it is the longest part), then per store: cold then
    // warm starts, one at a time, with the other server idle.
    const prepared = await Promise.allSettled(
      stores.map((store) => prepareStore(store, users, perUser)),
    );
    for (const p of prepared) if (p.status === 'fulfilled') stops.push(p.value.server.stop);
    for (const p of prepared) if (p.status === 'rejected') throw p.reason;
    for (const [i, store] of stores.entries()) {
      const { server, seeding } = (
        prepared[i] as PromiseFulfilledResult<Awaited<ReturnType<typeof prepareStore>>>
      ).value;
      const latency = await latencyPhase(server, users, perUser);
      const c = p50p99(latency.cold.map((s) => s.preload));
      const w = p50p99(latency.warm.map((s) => s.preload));
      process.stderr.write(
        `sessions: ${store}: preload cold p50 ${ms(c.p50)} / p99 ${ms(c.p99)} ms (${latency.cold.length}), warm p50 ${ms(w.p50)} / p99 ${ms(w.p99)} ms (${latency.warm.length}); cold not "store": ${latency.coldNotStore}, never warm: ${latency.neverWarm}, warm not "index": ${latency.warmNotIndex}\n`,
      );
      runsByStore.push({ store, seeding, latency, server });
    }

    // 2. Throughput: session starts and cached reads of each server, and the node:http
    // ceiling, interleaved, every other run in reverse order.
    const contexts = Array.from({ length: 1000 }, (_, i) =>
      new Corpus(10_000 + i).query(CONTEXT_WORDS),
    );
    const tallies = new Map<string, Tally>();
    const targets: Target[] = [];
    const readBytes = new Map<StoreKind, number>();
    const warm = new Map<StoreKind, { users: number[]; held: IndexStats; evicted: boolean }>();
    const churn = new Map<string, { builds: number; drops: number }>();
    for (const r of runsByStore) {
      const set = await warmSet(r.server, r.latency, contexts);
      warm.set(r.store, set);
      process.stderr.write(
        `sessions: ${r.store}: ${set.held.indexes} indexes held (${fmt(set.held.bytes / 2 ** 20, 1)} MiB); starts drawn from ${set.users.length} warm users\n`,
      );
      readBytes.set(r.store, await primeReads(r.server, set.users));
      const starts = newTally();
      const reads = newTally();
      tallies.set(`${r.store}-starts`, starts);
      tallies.set(`${r.store}-reads`, reads);
      targets.push(...storeTargets(r.server, set.users, connections, contexts, starts, reads));
    }
    const startBytes = median(runsByStore.flatMap((r) => r.latency.warm.map((s) => s.bytes)));
    const ceiling = await startCeiling({ '/v1/sessions': Math.round(startBytes) });
    stops.push(ceiling.stop);
    const ceilingTarget: Target = {
      name: 'ceiling',
      label: 'node:http ceiling',
      base: ceiling.base,
      spec: {
        ...(targets[0]?.spec as LoadSpec),
        onResponse: () => undefined,
      },
      begin: () => undefined,
      pid: ceiling.pid,
    };
    targets.unshift(ceilingTarget);
    const samples = new Map<string, LoadSample[]>(targets.map((t) => [t.name, []]));
    const appP50 = new Map<string, number[]>();
    const cpuPerReq = new Map<string, number[]>();
    const appP99 = new Map<string, number[]>();
    for (let round = 1; round <= opts.runs; round++) {
      for (const t of round % 2 === 1 ? targets : [...targets].reverse()) {
        const tally = tallies.get(t.name);
        t.begin();
        await load(t.base, t.spec, opts.warmupSec);
        const before = t.server ? await indexStats(t.server) : null;
        if (tally) tally.counting = true;
        const cpuBefore = processCpuMs(t.pid);
        const sample = await load(t.base, t.spec, opts.durationSec);
        const cpuAfter = processCpuMs(t.pid);
        if (tally) tally.counting = false;
        const cpuUs =
          cpuBefore === null || cpuAfter === null
            ? Number.NaN
            : ((cpuAfter - cpuBefore) * 1000) / Math.max(1, sample.total);
        cpuPerReq.set(t.name, [...(cpuPerReq.get(t.name) ?? []), cpuUs]);
        if (t.server && before) {
          const after = await indexStats(t.server);
          const c = churn.get(t.name) ?? { builds: 0, drops: 0 };
          c.builds += after.builds - before.builds;
          c.drops += after.drops - before.drops;
          churn.set(t.name, c);
        }
        samples.get(t.name)?.push(sample);
        let server = '';
        if (tally && tally.appMs.length > 0) {
          const a = p50p99(tally.appMs);
          appP50.set(t.name, [...(appP50.get(t.name) ?? []), a.p50]);
          appP99.set(t.name, [...(appP99.get(t.name) ?? []), a.p99]);
          server = `, server app p50 ${ms(a.p50)} ms, p99 ${ms(a.p99)} ms`;
        }
        process.stderr.write(
          `sessions: ${t.label}, run ${round}/${opts.runs}: ${fmt(sample.reqPerSec)} req/s, p50 ${sample.p50} ms, p99 ${sample.p99} ms${server}, server CPU ${fmt(cpuUs)} µs/req, errors ${sample.errors}, non-2xx ${sample.non2xx}\n`,
        );
      }
    }
    const summary = new Map([...samples].map(([name, list]) => [name, summarize(list)]));
    const top = summary.get('ceiling') as ReturnType<typeof summarize>;
    const throughput = new Map<StoreKind, StoreThroughput>();
    for (const r of runsByStore) {
      throughput.set(r.store, {
        starts: summary.get(`${r.store}-starts`) as ReturnType<typeof summarize>,
        reads: summary.get(`${r.store}-reads`) as ReturnType<typeof summarize>,
        startAppP50: median(appP50.get(`${r.store}-starts`) ?? []),
        startAppP99: median(appP99.get(`${r.store}-starts`) ?? []),
        startSources: tallies.get(`${r.store}-starts`)?.bySource ?? {},
        readSources: tallies.get(`${r.store}-reads`)?.bySource ?? {},
        startBytes,
        readBytes: readBytes.get(r.store) ?? 0,
        warmUsers: warm.get(r.store)?.users.length ?? 0,
        held: warm.get(r.store)?.held as IndexStats,
        evicted: warm.get(r.store)?.evicted ?? false,
        builds: churn.get(`${r.store}-starts`)?.builds ?? 0,
        drops: churn.get(`${r.store}-starts`)?.drops ?? 0,
        startCpuUs: median(cpuPerReq.get(`${r.store}-starts`) ?? []),
        readCpuUs: median(cpuPerReq.get(`${r.store}-reads`) ?? []),
      });
    }

    // ----- Report
    const rows: string[][] = [];
    for (const r of runsByStore) {
      for (const [phase, list] of [
        ['cold (store)', r.latency.cold],
        ['warm (index)', r.latency.warm],
      ] as const) {
        const pre = p50p99(list.map((s) => s.preload));
        const app = p50p99(list.map((s) => s.app));
        const client = p50p99(list.map((s) => s.clientMs));
        rows.push([
          r.store,
          phase,
          fmt(list.length),
          ms(pre.p50),
          ms(pre.p99),
          ms(app.p50),
          ms(app.p99),
          ms(client.p50),
          ms(client.p99),
        ]);
      }
    }
    const latencyNotes = runsByStore.map((r) => {
      const l = r.latency;
      const after = p50p99(l.warmAfterMs);
      return `${r.store}: seeded ${fmt(r.seeding.memories)} memories in ${fmt(r.seeding.seconds, 1)} s (${fmt(r.seeding.memories / r.seeding.seconds)} memories/s${stores.length > 1 ? ', both stores seeded at once' : ''}). First starts not answering desc="store": ${l.coldNotStore}; starts answering "store" after the first, before the index was held: ${l.extraStoreStarts}; users whose index was never held within ${(WARM_POLL_MS * WARM_POLL_TRIES) / 1000} s: ${l.neverWarm}; warm samples not answering "index": ${l.warmNotIndex}; index held ${ms(after.p50)} ms (p50) / ${ms(after.p99)} ms (p99) after the cold start's answer (first "index" answer, polled every ${WARM_POLL_MS} ms).`;
    });
    const throughputRows: string[][] = [];
    for (const r of runsByStore) {
      const t = throughput.get(r.store) as StoreThroughput;
      throughputRows.push([
        r.store,
        fmt(t.warmUsers),
        fmt(t.starts.reqPerSec),
        String(t.starts.p50),
        String(t.starts.p99),
        ms(t.startAppP50),
        ms(t.startAppP99),
        fmt(t.startCpuUs),
        fmt(top.reqPerSec),
        (t.starts.reqPerSec / top.reqPerSec).toFixed(3),
        fmt(t.reads.reqPerSec),
        (t.starts.reqPerSec / t.reads.reqPerSec).toFixed(3),
      ]);
    }
    const counts = (record: Record<string, number>): string =>
      Object.entries(record)
        .map(([k, v]) => `${k} ${fmt(v)}`)
        .join(', ');
    const total = (record: Record<string, number>): number =>
      Object.values(record).reduce((a, b) => a + b, 0);
    const sourcesNote = runsByStore.map((r) => {
      const t = throughput.get(r.store) as StoreThroughput;
      return `${r.store}: ${t.held.indexes} indexes held after the cold/warm part (${fmt(t.held.bytes / 2 ** 20, 1)} MiB; ${t.evicted ? `indexes were evicted, the ${JIT_WARMUP_STARTS} throwaway users' first` : `none evicted, ${JIT_WARMUP_STARTS} of them the throwaway users'`}); starts drawn from ${t.warmUsers} seeded users${t.evicted ? ' (90% of the seeded users held, the most recently started)' : ''}, each checked to answer desc="index" first. Measured starts answered from the index: ${share(t.startSources.index ?? 0, total(t.startSources))} (${counts(t.startSources)}); index builds during the measured windows: ${t.builds}, drops: ${t.drops}. Cached reads answered from L1: ${share(t.readSources.l1 ?? 0, total(t.readSources))} (${counts(t.readSources)}), up to ${fmt(t.readBytes)} B each, ${fmt(t.readCpuUs)} µs of server CPU per read. Errors: starts ${t.starts.errors}, reads ${t.reads.errors}; non-2xx: starts ${t.starts.non2xx}, reads ${t.reads.non2xx}.`;
    });
    const sections: ReportSection[] = [
      {
        heading: `Session-start throughput over HTTP, warm users, ${connections} connections`,
        columns: [
          'store',
          'warm users',
          'starts req/s',
          'client p50 ms',
          'client p99 ms',
          'server app p50 ms',
          'server app p99 ms',
          'server CPU µs/start',
          'node:http req/s',
          'of node:http',
          'cached read req/s',
          'of cached read',
        ],
        rows: throughputRows,
        notes: [
          `Each start: POST /v1/sessions for a random warm user (one whose index the server holds; the default ENGRAM_SEARCH_INDEX_MAX_BYTES of 128 MiB bounds how many: see below) with a fresh ${CONTEXT_WORDS}-word context, default budget (4,000 characters). Server app time: the \`app;dur\` of Engram's Server-Timing header (request arrival to serialized answer), percentiles per run, medians over ${opts.runs} run${opts.runs === 1 ? '' : 's'}.`,
          `Every start is durable before its 201: it inserts a session row (SQLite with synchronous=FULL, PostgreSQL commits), besides reading the user's timeout model and latest session (the model is written behind); the cached read writes nothing. Compare the server CPU per start with the bundle's own time (last table): the bundle is a small part of a start.`,
          `node:http ceiling: a bare node:http server answering the same POSTs with a body of ${fmt(startBytes)} B (the median size of the warm starts' answers; ${fmt(median(cpuPerReq.get('ceiling') ?? []))} µs of CPU per request). Cached read: GET /v1/users/{random user}/memories?limit=${READ_LIMIT} on the same server, every user's page primed until it answered \`engram-cache: l1\` (Engram's fast path before Fastify). Runs interleaved (ceiling, then each store's starts and reads), every other run in reverse order; medians of ${opts.runs}. Server CPU: user + system time of the server process (/proc/<pid>/stat, 10 ms ticks) over the window, per answered request; PostgreSQL's own processes are not counted.`,
          ...sourcesNote,
        ],
      },
      {
        heading: `Preload bundle in process, ${fmt(perUser)} memories, held index`,
        columns: ['memories', 'index MiB', 'p50 ms', 'p99 ms', 'items per bundle'],
        rows: [
          [
            fmt(inProcess.memories),
            fmt(inProcess.indexBytes / 2 ** 20, 2),
            ms(inProcess.p50),
            ms(inProcess.p99),
            inProcess.items.toFixed(1),
          ],
        ],
        notes: [
          `\`Preloader.bundle\` alone (src/sessions/preload.ts) on a held index of one user's memories (same text, pins and summaries as seeded), a ${CONTEXT_WORDS}-word context, default budget: summary, pinned, relevant (ranking), important and recent candidates, merged and cut to the budget. No HTTP, no store, no session writes. ${fmt(BUNDLES_PER_RUN)} bundles timed per run after as many untimed; medians over ${opts.runs} run${opts.runs === 1 ? '' : 's'}.`,
        ],
      },
    ];
    return {
      title: 'Sessions: preload latency and session-start throughput',
      columns: [
        'store',
        'start',
        'n',
        'preload p50 ms',
        'preload p99 ms',
        'app p50 ms',
        'app p99 ms',
        'client p50 ms',
        'client p99 ms',
      ],
      rows,
      notes: [
        ...notes,
        `${fmt(users)} users × ${fmt(perUser)} memories per store, seeded through POST /v1/memories/batch (${fmt(BATCH_ITEMS)} items per request, ${SEED_CONCURRENCY} in flight per store): 8–24 words from a Zipf(1.0) vocabulary (bench/lib/text-corpus.ts), sessions of ${SESSION_LENGTH} (the last memory of each of kind \`summary\`), one in ${PIN_EVERY} pinned, importance uniform in [0, 1]. Then the seeding server is stopped and a fresh one started on the same data (SQLite directory; PostgreSQL schema), so no user is warm.`,
        `Cold: each user's first POST /v1/sessions since that server started (a ${CONTEXT_WORDS}-word context, default budget), one request at a time, ${users > COLD_SAMPLE ? `a shuffled sample of ${COLD_SAMPLE} of the ${fmt(users)} users` : 'every user, in a shuffled order'}, after ${JIT_WARMUP_STARTS} starts of throwaway users without memories. Cold means the user's index is not held: the store's pages were just written, so they sit in the OS page cache (and PostgreSQL's buffers), not on a cold disk. Warm: the same user again, every ${WARM_POLL_MS} ms until an answer says desc="index" (the cold start builds the index in the background), then once more ${WARM_POLL_MS} ms later: that start is the warm sample (the first "index" answer may have waited for the end of the build).${stores.includes('postgres') ? ' PostgreSQL: VACUUM (ANALYZE) of the seeded schema before the fresh server starts (statistics of the seeded data, no autovacuum during the measurements).' : ''}`,
        'preload: the `preload;dur` of the Server-Timing header, the bundle alone (from the held index, or the store queries); app: its `app;dur`, the whole start (request arrival to serialized answer: also the session insert and the reads of the timeout model and latest session); client: the round trip seen by the bench (fetch, same machine).',
        `Servers run with ENGRAM_WARM_BOOT_USERS=0 and ENGRAM_WARM_AHEAD_USERS=0 (no background warming: only requests warm a user) and ENGRAM_SESSION_TIMEOUT_MIN_MS=1800000 (no session started by the bench expires during the run). Targets: preload p50 ≤ 1 ms warm and ≤ 10 ms cold from PostgreSQL, for a user with 1,000 memories.`,
        `Index capacity: one user's index of ${fmt(perUser)} memories counts ≈ ${fmt(inProcess.indexBytes / 2 ** 20, 2)} MiB (\`UserIndex.bytes\`), so the default ENGRAM_SEARCH_INDEX_MAX_BYTES (128 MiB) holds ≈ ${fmt(INDEX_BUDGET_BYTES / inProcess.indexBytes)} such users per instance${INDEX_BUDGET_BYTES / inProcess.indexBytes < Math.min(users, COLD_SAMPLE) ? `, fewer than the ${fmt(Math.min(users, COLD_SAMPLE))} started here: a start of a user whose index was evicted is cold again (and its background build evicts another)` : ''}.`,
        ...latencyNotes,
      ],
      sections,
      data: {
        users,
        perUser,
        connections,
        inProcess,
        stores: runsByStore.map((r) => ({
          store: r.store,
          seeding: r.seeding,
          latency: r.latency,
          throughput: throughput.get(r.store),
        })),
        ceiling: top,
        startBytes,
      },
    };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}
