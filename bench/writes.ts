/**
 * Write throughput: single writes (POST /v1/memories, 16 connections) and batches of 100
 * (POST /v1/memories/batch, 4 connections), on SQLite and, when reachable, PostgreSQL, each
 * next to the node:http ceiling measured with the same requests in the same run.
 */
import { startCeiling } from './lib/ceiling.ts';
import { type LoadSample, type LoadSpec, type LoadSummary, load, summarize } from './lib/load.ts';
import { BENCH_PG_URL, probePostgres } from './lib/postgres.ts';
import type { ScenarioOptions, ScenarioResult } from './lib/report.ts';
import { type EngramServer, type StoreKind, startEngram } from './lib/server-process.ts';

const BATCH_SIZE = 100;

const FACTS = [
  'prefers green tea in the morning and coffee after lunch',
  'works remotely on Fridays and keeps meetings short',
  'is allergic to peanuts; suggest recipes without them',
  'plays the cello in a community orchestra on Tuesday evenings',
  'is planning a trip to Lisbon in the spring with two friends',
  'asked for answers in metric units and a 24-hour clock',
  'is learning Rust and prefers examples over theory',
  'has a dog called Pixel who needs a walk at 7 am',
];

/** The n-th memory of the run: distinct content, spread over 1,000 users. */
function memory(n: number): Record<string, unknown> {
  return {
    userId: `bench-user-${n % 1000}`,
    content: `Memory ${n}: the user ${FACTS[n % FACTS.length]}.`,
    kind: 'preference',
    tags: ['bench', `topic-${n % 16}`],
    importance: 0.5,
  };
}

interface Workload {
  name: string;
  spec: (key: string) => LoadSpec;
}

const json = (key: string) => ({
  authorization: `Bearer ${key}`,
  'content-type': 'application/json',
});

const WORKLOADS: Workload[] = [
  {
    name: 'single write',
    spec: (key) => ({
      path: '/v1/memories',
      method: 'POST',
      headers: json(key),
      body: (n) => JSON.stringify(memory(n)),
      connections: 16,
      itemsPerRequest: 1,
    }),
  },
  {
    name: `batch write (${BATCH_SIZE})`,
    spec: (key) => ({
      path: '/v1/memories/batch',
      method: 'POST',
      headers: json(key),
      body: (n) =>
        JSON.stringify({
          items: Array.from({ length: BATCH_SIZE }, (_, i) => memory(n * BATCH_SIZE + i)),
        }),
      connections: 4,
      itemsPerRequest: BATCH_SIZE,
    }),
  },
];

/** Size in bytes of Engram's answer to one request of `spec` (sizes the ceiling's payload). */
async function responseBytes(server: EngramServer, spec: LoadSpec): Promise<number> {
  const res = await fetch(`${server.base}${spec.path}`, {
    method: spec.method,
    headers: spec.headers,
    body: spec.body?.(-1),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`sample ${spec.path}: ${res.status} ${text}`);
  return Buffer.byteLength(text);
}

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a';

function describe(s: LoadSample): string {
  return `${fmt(s.reqPerSec)} req/s, p50 ${s.p50} ms, p99 ${s.p99} ms, errors ${s.errors}, non-2xx ${s.non2xx}`;
}

/** Runs the write benchmark. */
export async function run(options: ScenarioOptions): Promise<ScenarioResult> {
  const notes: string[] = [];
  const stores: StoreKind[] = ['sqlite'];
  const pgProblem = await probePostgres();
  if (pgProblem === null) stores.push('postgres');
  else {
    const line = `SKIPPED postgres: not reachable at ${BENCH_PG_URL} (${pgProblem})`;
    process.stderr.write(`\n!!!!! ${line} !!!!!\n\n`);
    notes.push(`**${line}**`);
  }

  const servers: EngramServer[] = [];
  const stops: (() => Promise<unknown>)[] = [];
  try {
    for (const store of stores) {
      const server = await startEngram(store);
      servers.push(server);
      stops.push(server.stop);
    }
    const [first] = servers;
    if (!first) throw new Error('no store to measure');
    const payloads: Record<string, number> = {};
    for (const w of WORKLOADS) {
      const spec = w.spec(first.key);
      payloads[spec.path] = await responseBytes(first, spec);
    }
    const ceiling = await startCeiling(payloads);
    stops.push(ceiling.stop);
    const fastifyCeiling = await startCeiling(payloads, 'fastify');
    stops.push(fastifyCeiling.stop);

    const targets = [
      { name: 'ceiling', base: ceiling.base, key: 'ceiling-ignores-the-key' },
      { name: 'fastify', base: fastifyCeiling.base, key: 'ceiling-ignores-the-key' },
      ...servers.map((s) => ({ name: s.store, base: s.base, key: s.key })),
    ];
    const results: Record<string, Record<string, LoadSummary>> = {};
    for (const w of WORKLOADS) {
      const samples = new Map<string, LoadSample[]>(targets.map((t) => [t.name, []]));
      for (let run = 1; run <= options.runs; run++) {
        // Interleaved: the ceiling and each store take turns, so drift hits them alike.
        for (const t of targets) {
          const spec = w.spec(t.key);
          await load(t.base, spec, options.warmupSec);
          const sample = await load(t.base, spec, options.durationSec);
          samples.get(t.name)?.push(sample);
          process.stderr.write(
            `writes: ${w.name}, ${t.name}, run ${run}/${options.runs}: ${describe(sample)}\n`,
          );
        }
      }
      results[w.name] = Object.fromEntries(
        [...samples].map(([name, list]) => [name, summarize(list)]),
      );
    }

    const columns = [
      'workload',
      'target',
      'req/s',
      'memories/s',
      'p50 ms',
      'p97.5 ms',
      'p99 ms',
      'errors',
      'non-2xx',
      'node:http req/s',
      'of node:http',
      'of fastify',
    ];
    const rows: string[][] = [];
    for (const w of WORKLOADS) {
      const byTarget = results[w.name] ?? {};
      const top = byTarget.ceiling;
      const bareFastify = byTarget.fastify;
      for (const t of targets) {
        const s = byTarget[t.name];
        if (!s || !top || !bareFastify) continue;
        const isCeiling = t.name === 'ceiling' || t.name === 'fastify';
        rows.push([
          w.name,
          t.name === 'ceiling'
            ? 'node:http ceiling'
            : t.name === 'fastify'
              ? 'bare Fastify ceiling'
              : `engram ${t.name}`,
          fmt(s.reqPerSec),
          isCeiling ? '—' : fmt(s.itemsPerSec),
          fmt(s.p50),
          fmt(s.p97_5),
          fmt(s.p99),
          String(s.errors),
          String(s.non2xx),
          fmt(top.reqPerSec),
          fmt(s.reqPerSec / top.reqPerSec, 3),
          fmt(s.reqPerSec / bareFastify.reqPerSec, 3),
        ]);
      }
    }
    notes.push(
      'req/s, memories/s and latencies are medians of the runs; errors and non-2xx are totals over all runs; autocannon records latency in whole milliseconds.',
      `Ceiling: a bare node:http server in its own process that reads each request and answers 201 with a fixed JSON body of the size of Engram's answer (${Object.entries(
        payloads,
      )
        .map(([path, bytes]) => `${path}: ${bytes} B`)
        .join(
          ', ',
        )}), driven with the same requests and connections; the bare Fastify ceiling is one Fastify route per path (default JSON body parser) answering the same bytes.`,
      'Generator (autocannon, in the bench process) and servers share the same cores: compare ratios, not absolute req/s, across machines.',
      'Every store starts empty and grows during the run (each measurement adds its writes).',
    );
    return {
      title: 'Engram write throughput',
      columns,
      rows,
      notes,
      data: { stores, payloads, batchSize: BATCH_SIZE, results },
    };
  } finally {
    for (const stop of stops.reverse()) {
      const code = await stop().catch((err: unknown) => {
        process.stderr.write(`stopping a server failed: ${(err as Error).message}\n`);
        return null;
      });
      if (code !== 0 && code !== null) process.stderr.write(`a server exited with ${code}\n`);
    }
  }
}
