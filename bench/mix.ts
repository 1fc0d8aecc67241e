/**
 * The realistic mix (`npm run bench -- mix`): virtual users starting sessions, searching,
 * appending messages and reading memories with think times, going idle and coming back, or
 * leaving. (1) Saturation: the closed loop (no think time) of `--sockets` users, against Engram
 * and against the bare `node:http` and Fastify ceilings answering the same mean bytes with the
 * same generator. (2) Throughput against concurrency (closed loop, 1…256 users). (3) Open loop:
 * `--vus` users offering 25%, 50% and 75% of the measured saturation, latency from due times.
 */
import { join } from 'node:path';
import { startCeiling } from './lib/ceiling.ts';
import { type DiskWaits, withDiskWaits } from './lib/disk-waits.ts';
import { median } from './lib/load.ts';
import {
  ceilingWarmup,
  closedLoop,
  fmt,
  medianRun,
  mixDescription,
  mixOptions,
  mixWarmup,
  ms,
  openMix,
  PLOT_DIR,
  prepareMix,
  type Saturation,
  type Saturations,
  saturations,
  startMixServer,
} from './lib/mix-setup.ts';
import { writeChart } from './lib/plot.ts';
import type { ScenarioOptions, ScenarioResult } from './lib/report.ts';
import { type MixResult, OPS } from './lib/virtual-users.ts';

/** Shares of the measured saturation offered by the open-loop runs. */
const LOADS = [0.25, 0.5, 0.75];
/** Concurrency levels of the closed-loop sweep. */
const SWEEP = [1, 4, 16, 64, 256];
/** The mix's targets at 50% of saturation (issue 6): p99 of reads and searches, of writes. */
export const TARGET_READ_P99_MS = 10;
export const TARGET_WRITE_P99_MS = 25;

export async function run(opts: ScenarioOptions): Promise<ScenarioResult> {
  const mix = mixOptions(opts);
  const warmupSec = mixWarmup(opts);
  const o = { ...opts, warmupSec };
  const data = await prepareMix(mix, 'mix');
  const server = await startMixServer(data);
  let measured: Saturations;
  const sweep: Array<{ users: number; engram: number; fastify?: number; nodeHttp?: number }> = [];
  const open: Array<{
    share: number;
    rate: number;
    runs: MixResult[];
    /** The log's flushes during each run (null: the store does not report them). */
    disks: Array<DiskWaits | null>;
  }> = [];
  try {
    process.stderr.write(`mix: saturation (closed loop, ${mix.vus} users, with the ceilings)…\n`);
    measured = await saturations(server, data, mix.vus, mix.sockets, o);
    const { saturation } = measured;
    process.stderr.write(`mix: saturation ${fmt(saturation.rate)} req/s\n`);
    for (const users of SWEEP) {
      const r = await closedLoop(server.base, server.key, data, users, users, o, 1);
      sweep.push({ users, engram: r.rate });
      process.stderr.write(`mix: ${users} users closed loop: ${fmt(r.rate)} req/s\n`);
    }
    for (const share of LOADS) {
      const rate = measured.saturation.rate * share;
      const runs: MixResult[] = [];
      const disks: Array<DiskWaits | null> = [];
      for (let i = 0; i < opts.runs; i++) {
        const { result, disk } = await withDiskWaits(server.base, server.key, () =>
          openMix(server.base, server.key, data, mix, rate, {
            durationSec: opts.durationSec,
            warmupSec,
            seed: 100 + i,
          }),
        );
        runs.push(result);
        disks.push(disk);
      }
      const m = medianRun(runs);
      process.stderr.write(
        `mix: ${share * 100}% (${fmt(rate)} req/s offered): reads p99 ${ms(m.reads.p99)} ms, writes p99 ${ms(m.writes.p99)} ms, errors ${m.errors}, non-2xx ${m.non2xx}\n`,
      );
      open.push({ share, rate, runs, disks });
    }
  } finally {
    await server.stop();
  }
  const { saturation, ceilings, ratios } = measured;
  // The generator's own floor: the same open loop against the bare Fastify ceiling.
  const floors: MixResult[] = [];
  {
    const ceiling = await startCeiling({ '*': Math.round(saturation.meanBytes) }, 'fastify');
    try {
      for (const { rate } of open) {
        floors.push(
          await openMix(ceiling.base, 'ceiling', data, mix, rate, {
            durationSec: opts.durationSec,
            warmupSec: ceilingWarmup(o).warmupSec,
            seed: 100,
          }),
        );
      }
    } finally {
      await ceiling.stop();
    }
  }
  for (const point of sweep) {
    for (const kind of ['fastify', 'node:http'] as const) {
      const ceiling = await startCeiling({ '*': Math.round(saturation.meanBytes) }, kind);
      try {
        const r = await closedLoop(
          ceiling.base,
          'ceiling',
          data,
          point.users,
          point.users,
          ceilingWarmup(o),
          1,
        );
        if (kind === 'fastify') point.fastify = r.rate;
        else point.nodeHttp = r.rate;
      } finally {
        await ceiling.stop();
      }
    }
  }

  const nodeRate = ceilings['node:http'].rate;
  const fastifyRate = ceilings.fastify.rate;
  /** A row of the closed-loop table; Engram's ratios are the turns' (`saturations`). */
  const closedRow = (
    name: string,
    s: Saturation,
    of = { node: s.rate / nodeRate, fastify: s.rate / fastifyRate },
  ): string[] => {
    const p50 = median(s.runs.map((r) => r.all.p50));
    const p99 = median(s.runs.map((r) => r.all.p99));
    const errors = s.runs.reduce((n, r) => n + r.errors, 0);
    const non2xx = s.runs.reduce((n, r) => n + r.non2xx, 0);
    return [
      name,
      fmt(s.rate),
      ms(p50),
      ms(p99),
      String(errors),
      String(non2xx),
      of.node.toFixed(3),
      of.fastify.toFixed(3),
    ];
  };

  const openRows = open.map(({ share, rate, runs, disks }, i) => {
    const m = medianRun(runs);
    const disk = disks[runs.indexOf(m)] ?? null;
    const errors = runs.reduce((n, r) => n + r.errors, 0);
    const non2xx = runs.reduce((n, r) => n + r.non2xx, 0);
    const met =
      m.reads.p99 <= TARGET_READ_P99_MS &&
      m.writes.p99 <= TARGET_WRITE_P99_MS &&
      errors === 0 &&
      non2xx === 0;
    return [
      `${share * 100}%`,
      fmt(rate),
      fmt(m.offeredRate),
      fmt(m.achievedRate),
      ms(m.reads.p50),
      ms(m.reads.p99),
      ms(m.writes.p50),
      ms(m.writes.p99),
      ms(m.all.p999),
      ms(floors[i]?.all.p99 ?? Number.NaN),
      disk
        ? `${(disk.busy * 100).toFixed(0)}% (${fmt(disk.perSec)}/s × ${ms(disk.meanMs)} ms)`
        : '—',
      String(errors),
      String(non2xx),
      share === 0.5 ? (met ? 'yes' : '**no**') : '—',
    ];
  });
  const half = medianRun(open.find((l) => l.share === 0.5)?.runs ?? []);
  const opRows = OPS.map((op) => {
    const p = half.ops[op];
    const server = half.server[op];
    const own = (v: number) => (server.count > 0 ? ms(v) : '—');
    return [
      op,
      fmt(p.count),
      ms(p.p50),
      ms(p.p90),
      ms(p.p99),
      ms(p.p999),
      ms(p.max),
      own(server.p50),
      own(server.p99),
    ];
  });

  const throughputSvg = writeChart(join(PLOT_DIR, 'mix-throughput.svg'), {
    title: 'Realistic mix, closed loop: throughput against concurrency',
    xLabel: 'concurrent users (connections)',
    yLabel: 'requests/s',
    xScale: 'log',
    // Engram sits an order of magnitude under the bare servers: a log axis shows both shapes.
    yScale: 'log',
    series: [
      { name: 'Engram', points: sweep.map((p) => ({ x: p.users, y: p.engram })) },
      {
        name: 'bare Fastify',
        dashed: true,
        points: sweep.map((p) => ({ x: p.users, y: p.fastify ?? Number.NaN })),
      },
      {
        name: 'bare node:http',
        dashed: true,
        points: sweep.map((p) => ({ x: p.users, y: p.nodeHttp ?? Number.NaN })),
      },
    ],
  });
  const latencySvg = writeChart(join(PLOT_DIR, 'mix-latency.svg'), {
    title: `Realistic mix, open loop (${fmt(mix.vus)} users): latency against offered load`,
    xLabel: 'offered requests/s',
    yLabel: 'ms (from due time)',
    yScale: 'log',
    series: (['reads', 'writes'] as const).flatMap((kind) =>
      (['p50', 'p99', 'p999'] as const).map((q) => ({
        name: `${kind} ${q === 'p999' ? 'p99.9' : q}`,
        dashed: kind === 'writes',
        points: open.map(({ runs }) => {
          const m = medianRun(runs);
          return { x: m.offeredRate, y: m[kind][q] };
        }),
      })),
    ),
    hLines: [
      { y: TARGET_READ_P99_MS, label: `reads p99 target ${TARGET_READ_P99_MS} ms` },
      { y: TARGET_WRITE_P99_MS, label: `writes p99 target ${TARGET_WRITE_P99_MS} ms` },
    ],
  });

  const sources = Object.entries(half.sources)
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(', ');
  return {
    title: 'Realistic mix: saturation, throughput against concurrency, open loop at 25/50/75%',
    columns: [
      'target (closed loop)',
      'req/s',
      'p50 ms',
      'p99 ms',
      'errors',
      'non-2xx',
      'of node:http',
      'of fastify',
    ],
    rows: [
      closedRow(`engram ${mix.store}`, saturation, {
        node: ratios['node:http'],
        fastify: ratios.fastify,
      }),
      closedRow('bare node:http ceiling', ceilings['node:http']),
      closedRow('bare Fastify ceiling', ceilings.fastify),
    ],
    notes: [
      `Data: ${data.describe}.`,
      mixDescription(mix.vus, mix.sockets),
      `Saturation: the same mix as a closed loop (no think or idle time) of the same ${fmt(mix.vus)} users on ${mix.sockets} connections; medians of ${opts.runs} runs of ${opts.durationSec} s, each after ${warmupSec} s unrecorded (the users are mid-session when recording starts). The ceilings answer every path with the mix's mean answer (${fmt(saturation.meanBytes)} B), driven by the same generator and users, after ${ceilingWarmup(o).warmupSec} s unrecorded. Engram and the ceilings are measured in turns (Engram, node:http, Fastify, ${opts.runs} times); Engram's ratios are the medians of the turns' ratios, so that a drift of the machine's speed moves both sides of a ratio alike.`,
      'Generator (this process, node:http client) and server share the 2 cores: compare ratios, not absolute req/s, across machines.',
      `Plots: [throughput against concurrency](${throughputSvg.slice(PLOT_DIR.length + 1)}), [latency against offered load](${latencySvg.slice(PLOT_DIR.length + 1)}).`,
    ],
    sections: [
      {
        heading: `Open loop, ${fmt(mix.vus)} virtual users, at shares of the saturation`,
        columns: [
          'load',
          'target req/s',
          'offered req/s',
          'achieved req/s',
          'reads p50 ms',
          'reads p99 ms',
          'writes p50 ms',
          'writes p99 ms',
          'all p99.9 ms',
          'bare Fastify p99 ms',
          'log flushing',
          'errors',
          'non-2xx',
          'target met',
        ],
        rows: openRows,
        notes: [
          `Reads: search and read; writes: session start (it commits the session), append and end. Latency runs from each request's due time on its user's schedule (think times exponential, drawn so that the users together offer the target rate; idle pauses ≤ half of a user's time), so a stall counts for every request due during it. Medians of ${opts.runs} runs of ${opts.durationSec} s (the run with the median p99), after ${warmupSec} s unrecorded each; errors and non-2xx summed over the runs.`,
          "Bare Fastify p99: the same open loop (users, rate, connections) against the bare Fastify ceiling, one run: the generator's own floor on this machine (it shares the cores with the server).",
          'Log flushing: the share of the run (its warm-up included) in which the write-ahead log was being flushed to disk (`fdatasync`, one at a time; every write is acknowledged after one that began after its commit), with the flushes per second and their mean, from `GET /v1/stats/store` before and after the run. Near 100%, writes queue for the disk.',
          `Target at 50%: reads p99 ≤ ${TARGET_READ_P99_MS} ms, writes p99 ≤ ${TARGET_WRITE_P99_MS} ms, no error.`,
          `At 50%, where answers came from (Server-Timing): ${sources}.`,
        ],
      },
      {
        heading: 'Per operation at 50% of saturation (the median run)',
        offeredRate: Math.round(half.offeredRate),
        columns: [
          'op',
          'count',
          'p50 ms',
          'p90 ms',
          'p99 ms',
          'p99.9 ms',
          'max ms',
          'in server p50 ms',
          'in server p99 ms',
        ],
        rows: opRows,
        notes: [
          "In server: the time the server reports for the request (Server-Timing `app`: from its arrival in Fastify to its serialized answer, waits for the disk included); the rest of the latency is spent before the server reads the request (the client pool's queue, the event loop busy with other requests) and in the generator. Session starts and searches report it; the other routes do not (reads skip the framework).",
        ],
      },
      {
        heading: 'Throughput against concurrency (closed loop, one run per point)',
        columns: [
          'users',
          'engram req/s',
          'bare Fastify req/s',
          'bare node:http req/s',
          'engram ÷ fastify',
        ],
        rows: sweep.map((p) => [
          String(p.users),
          fmt(p.engram),
          fmt(p.fastify ?? Number.NaN),
          fmt(p.nodeHttp ?? Number.NaN),
          p.fastify ? (p.engram / p.fastify).toFixed(3) : '—',
        ]),
      },
    ],
    data: { mix, saturation, ceilings, sweep, open, floors, dataset: data.describe },
  };
}
