/**
 * Search speed. (1) Ranking in process: a 5-word query over a user's index of 50, 1,000 and
 * 10,000 memories (query tokenization included), per-query median and p99, next to a plain
 * BM25 inverted index over the same memories measured in the same run. (2) Over HTTP: search
 * throughput and latency for warm users with 1,000 memories each, the server's own time per
 * request (its Server-Timing header), next to the node:http ceiling answering the same requests
 * with a body of the same size.
 */
import { rank, rankOptions } from '../src/search/ranker.ts';
import { termsOf } from '../src/search/tokenizer.ts';
import { UserIndex } from '../src/search/user-index.ts';
import { startCeiling } from './lib/ceiling.ts';
import { type LoadSpec, load, median, summarize } from './lib/load.ts';
import { PlainBm25 } from './lib/plain-bm25.ts';
import type { ScenarioOptions, ScenarioResult } from './lib/report.ts';
import { startEngram } from './lib/server-process.ts';
import { Corpus } from './lib/text-corpus.ts';

const SIZES = [50, 1000, 10_000];
const QUERY_WORDS = 5;
/** Queries measured per run and size (after as many unrecorded ones). */
const QUERIES_PER_RUN = 20_000;

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number;
}

/** Per-query times (µs) of `fn` over the queries, cycled: median and p99. */
function timeQueries(queries: string[], fn: (q: string) => unknown): { p50: number; p99: number } {
  for (let i = 0; i < QUERIES_PER_RUN; i++) fn(queries[i % queries.length] as string);
  const times = new Float64Array(QUERIES_PER_RUN);
  for (let i = 0; i < QUERIES_PER_RUN; i++) {
    const q = queries[i % queries.length] as string;
    const t0 = process.hrtime.bigint();
    fn(q);
    times[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  times.sort();
  return { p50: percentile(times, 0.5), p99: percentile(times, 0.99) };
}

interface RankingFigure {
  memories: number;
  buildMs: number;
  p50: number;
  p99: number;
  plainP50: number;
  plainP99: number;
}

function rankingBenchmark(runs: number): RankingFigure[] {
  const figures: RankingFigure[] = [];
  for (const n of SIZES) {
    const corpus = new Corpus(n);
    const rows = corpus.rows('bench', `user-${n}`, n);
    const queries = Array.from({ length: 1000 }, () => corpus.query(QUERY_WORDS));
    const t0 = performance.now();
    const index = new UserIndex(1, rows);
    const buildMs = performance.now() - t0;
    const plain = new PlainBm25(rows.map((r) => r.content));
    const options = rankOptions(Date.now(), 30 * 86_400_000);
    const ours: Array<{ p50: number; p99: number }> = [];
    const theirs: Array<{ p50: number; p99: number }> = [];
    for (let r = 0; r < runs; r++) {
      ours.push(timeQueries(queries, (q) => rank(index, termsOf(q), options)));
      theirs.push(timeQueries(queries, (q) => plain.search(q, 10)));
    }
    figures.push({
      memories: n,
      buildMs,
      p50: median(ours.map((o) => o.p50)),
      p99: median(ours.map((o) => o.p99)),
      plainP50: median(theirs.map((o) => o.p50)),
      plainP99: median(theirs.map((o) => o.p99)),
    });
    process.stderr.write(`search: ranked ${n} memories\n`);
  }
  return figures;
}

interface HttpFigure {
  reqPerSec: number;
  p50: number;
  p99: number;
  serverP50: number;
  serverP99: number;
  ceilingReqPerSec: number;
  responseBytes: number;
  errors: number;
  non2xx: number;
}

async function httpBenchmark(
  opts: ScenarioOptions,
  users: number,
  perUser: number,
  connections: number,
): Promise<HttpFigure> {
  const server = await startEngram('sqlite');
  try {
    const corpus = new Corpus(perUser);
    const headers = {
      authorization: `Bearer ${server.key}`,
      'content-type': 'application/json',
    };
    for (let u = 0; u < users; u++) {
      const rows = corpus.rows('bench', `user-${u}`, perUser);
      for (let i = 0; i < rows.length; i += 1000) {
        const items = rows.slice(i, i + 1000).map((r) => ({
          userId: r.userId,
          sessionId: r.sessionId ?? undefined,
          content: r.content,
          importance: r.importance,
        }));
        const res = await fetch(`${server.base}/v1/memories/batch`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ items }),
        });
        if (res.status !== 201) throw new Error(`seeding: ${res.status} ${await res.text()}`);
      }
    }
    const queries = Array.from({ length: 1000 }, () =>
      JSON.stringify({ query: corpus.query(QUERY_WORDS), k: 10 }),
    );
    // Warm: every user's index is built by a first search.
    let responseBytes = 0;
    for (let u = 0; u < users; u++) {
      const res = await fetch(`${server.base}/v1/users/user-${u}/memories/search`, {
        method: 'POST',
        headers,
        body: queries[u],
      });
      if (res.status !== 200) throw new Error(`warming: ${res.status} ${await res.text()}`);
      responseBytes = Math.max(responseBytes, (await res.arrayBuffer()).byteLength);
    }
    const serverTimes: number[] = [];
    const spec: LoadSpec = {
      path: '/v1/users/user-0/memories/search',
      pathOf: (n) => `/v1/users/user-${n % users}/memories/search`,
      method: 'POST',
      headers,
      body: (n) => queries[n % queries.length] as string,
      connections,
      itemsPerRequest: 1,
      onResponse: (_status, header) => {
        const timing = header('server-timing');
        const dur = timing ? Number(/dur=([\d.]+)/.exec(timing)?.[1]) : Number.NaN;
        if (Number.isFinite(dur)) serverTimes.push(dur);
      },
    };
    const ceiling = await startCeiling({ '/search': responseBytes });
    const ceilingSpec: LoadSpec = {
      ...spec,
      path: '/search',
      pathOf: () => '/search',
      onResponse: () => undefined,
    };
    const ours = [];
    const theirs = [];
    const serverP50: number[] = [];
    const serverP99: number[] = [];
    try {
      for (let r = 0; r < opts.runs; r++) {
        await load(server.base, spec, opts.warmupSec);
        serverTimes.length = 0;
        ours.push(await load(server.base, spec, opts.durationSec));
        const sorted = Float64Array.from(serverTimes).sort();
        serverP50.push(percentile(sorted, 0.5));
        serverP99.push(percentile(sorted, 0.99));
        await load(ceiling.base, ceilingSpec, opts.warmupSec);
        theirs.push(await load(ceiling.base, ceilingSpec, opts.durationSec));
      }
    } finally {
      await ceiling.stop();
    }
    const o = summarize(ours);
    return {
      reqPerSec: o.reqPerSec,
      p50: o.p50,
      p99: o.p99,
      serverP50: median(serverP50),
      serverP99: median(serverP99),
      ceilingReqPerSec: summarize(theirs).reqPerSec,
      responseBytes,
      errors: o.errors,
      non2xx: o.non2xx,
    };
  } finally {
    await server.stop();
  }
}

const us = (n: number): string => n.toFixed(n < 10 ? 2 : 1);
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Runs the scenario. */
export async function run(opts: ScenarioOptions): Promise<ScenarioResult> {
  const users = Number(opts.extra?.users ?? 10);
  const perUser = Number(opts.extra?.memories ?? 1000);
  const connections = Number(opts.extra?.connections ?? 8);
  const ranking = rankingBenchmark(opts.runs);
  const http = await httpBenchmark(opts, users, perUser, connections);
  return {
    title: 'Search: in-process ranking and HTTP search',
    columns: [
      'memories',
      'index build ms',
      'rank p50 µs',
      'rank p99 µs',
      'plain BM25 p50 µs',
      'plain BM25 p99 µs',
      'p50 / plain',
    ],
    rows: ranking.map((f) => [
      fmt(f.memories),
      f.buildMs.toFixed(1),
      us(f.p50),
      us(f.p99),
      us(f.plainP50),
      us(f.plainP99),
      (f.p50 / f.plainP50).toFixed(2),
    ]),
    notes: [
      `A ${QUERY_WORDS}-word query, k = 10, default weights and text settings; the time includes tokenizing the query (the memories were tokenized once, when indexed). Median over ${opts.runs} runs of ${fmt(QUERIES_PER_RUN)} queries each (after as many unrecorded).`,
      'Memories: 8–24 words drawn from a Zipf(1.0) vocabulary of 20,000 made-up words, the 100 most frequent left out as a tokenizer drops stop words; sessions of 20 messages. Queries draw from the same distribution.',
      'Plain BM25: a minimal inverted index (term → postings, score accumulation, sort) over the same memories, measured in the same run: the floor of this kind of ranking in JavaScript.',
      'Targets: ranking 50 memories ≤ 5 µs median, 10,000 ≤ 500 µs median.',
    ],
    sections: [
      {
        heading: `HTTP search, ${users} users × ${fmt(perUser)} memories, warm indexes, ${connections} connections`,
        columns: [
          'req/s',
          'client p50 ms',
          'client p99 ms',
          'server p50 ms',
          'server p99 ms',
          'node:http req/s',
          'of node:http',
        ],
        rows: [
          [
            fmt(http.reqPerSec),
            String(http.p50),
            String(http.p99),
            http.serverP50.toFixed(3),
            http.serverP99.toFixed(3),
            fmt(http.ceilingReqPerSec),
            (http.reqPerSec / http.ceilingReqPerSec).toFixed(3),
          ],
        ],
        notes: [
          `Server time: Engram's Server-Timing header, from the request's arrival to its serialized answer (parse, validation, search, serialization). Target: p99 ≤ 1 ms.`,
          `Each request: a random ${QUERY_WORDS}-word query for a random user, k = 10; answers of up to ${fmt(http.responseBytes)} bytes; the node:http ceiling answers the same requests with a body of that size.`,
          `Errors: ${http.errors}, non-2xx: ${http.non2xx}.`,
        ],
      },
    ],
    data: { ranking, http, users, perUser, connections },
  };
}
