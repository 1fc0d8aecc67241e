/**
 * Soak (`npm run bench -- soak`): the realistic mix at a steady open-loop rate for `--length`
 * seconds on a large data set (default 1,000,000 memories), sampling the server's RSS, CPU and
 * latency every 10 s: do memory and latency stay flat?
 */
import { join } from 'node:path';
import { processCpuMs } from './lib/cpu.ts';
import {
  closedLoop,
  fmt,
  MIX_OPTIONS,
  mixDescription,
  mixOptions,
  mixWarmup,
  ms,
  openMix,
  PLOT_DIR,
  prepareMix,
  startMixServer,
} from './lib/mix-setup.ts';
import { writeChart } from './lib/plot.ts';
import type { ScenarioOptions, ScenarioResult } from './lib/report.ts';
import { processRssMiB } from './lib/rss.ts';
import { inheritedSettings } from './lib/server-process.ts';
import type { runMix, WindowFigures } from './lib/virtual-users.ts';

/** RSS target after a 10-minute soak with 1,000,000 memories (issue 6). */
export const TARGET_RSS_MIB = 256;
const WINDOW_SEC = 10;

/** The scenario's own options. */
export const SOAK_OPTIONS: Record<string, string> = {
  ...MIX_OPTIONS,
  length: 'S     seconds of the soak (default 600)',
  rate: 'R       offered requests/s (default: half the saturation, measured first)',
};

/** Where the server's memory was at the end of the soak (MiB), from its stats routes. */
interface MemoryAtEnd {
  heapUsed: number;
  heapTotal: number;
  arrayBuffers: number;
  searchIndexes: number;
  l1Bodies: number;
  /** The index cache's counters: held indexes, hits, builds, refusals, one-search builds. */
  search: {
    indexes: number;
    hits: number;
    builds: number;
    startBuilds: number;
    warmBuilds: number;
    refused: number;
    transient: number;
  };
}

const MIB = 2 ** 20;

/** Reads the server's memory and cache stats: what its RSS is made of. */
async function memoryAtEnd(base: string, key: string): Promise<MemoryAtEnd> {
  const get = async (path: string) => {
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } });
    if (!res.ok) throw new Error(`soak: ${path} answered ${res.status}`);
    return res.json();
  };
  const memory = (await get('/v1/stats/memory')) as Record<string, number>;
  const cache = (await get('/v1/stats/cache')) as {
    counters: { l1Bytes: number };
    search: MemoryAtEnd['search'] & { bytes: number };
  };
  const { indexes, hits, builds, startBuilds, warmBuilds, refused, transient } = cache.search;
  return {
    heapUsed: (memory.heapUsed ?? 0) / MIB,
    heapTotal: (memory.heapTotal ?? 0) / MIB,
    arrayBuffers: (memory.arrayBuffers ?? 0) / MIB,
    searchIndexes: cache.search.bytes / MIB,
    l1Bodies: cache.counters.l1Bytes / MIB,
    search: { indexes, hits, builds, startBuilds, warmBuilds, refused, transient },
  };
}

/** One window of the soak with the server's state at its end. */
interface Sample extends WindowFigures {
  rssMiB: number | null;
  cpuShare: number | null;
}

/** Least-squares slope of y over x (per unit of x); 0 for fewer than two points. */
export function slope(points: Array<{ x: number; y: number }>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

export async function run(opts: ScenarioOptions): Promise<ScenarioResult> {
  // 1,000,000 memories over 20,000 users, at most 2,000 each: the default index budget holds a
  // small part of the busy users' indexes, the rest is searched through the store.
  const mix = mixOptions(opts, {
    users: 20_000,
    memories: 1_000_000,
    maxPerUser: 2_000,
    indexMiB: undefined,
  });
  const lengthSec = Number(opts.extra?.length ?? 600);
  if (!Number.isFinite(lengthSec) || lengthSec < WINDOW_SEC * 2) {
    throw new RangeError(`--length must be ≥ ${WINDOW_SEC * 2}`);
  }
  const warmupSec = mixWarmup(opts);
  const data = await prepareMix(mix, 'soak');
  const server = await startMixServer(data);
  const samples: Sample[] = [];
  let rate: number;
  let measuredSaturation: number | null = null;
  let rssBefore: number | null;
  let result: Awaited<ReturnType<typeof runMix>>;
  let memory: MemoryAtEnd;
  try {
    rssBefore = processRssMiB(server.pid);
    if (opts.extra?.rate !== undefined) {
      rate = Number(opts.extra.rate);
      if (!Number.isFinite(rate) || rate <= 0) throw new RangeError('--rate must be > 0');
    } else {
      const sat = await closedLoop(
        server.base,
        server.key,
        data,
        mix.vus,
        mix.sockets,
        { ...opts, warmupSec },
        1,
      );
      measuredSaturation = sat.rate;
      // A server that answered nothing has no saturation to take half of (rate 0 would close
      // the loop): say so instead of soaking nothing.
      if (!(sat.rate >= 1)) {
        throw new Error(
          `soak: the saturation run answered ${sat.runs[0]?.completed ?? 0} requests (errors ${sat.runs[0]?.errors ?? 0}): nothing to soak at`,
        );
      }
      rate = sat.rate / 2;
    }
    process.stderr.write(`soak: ${fmt(rate)} req/s for ${lengthSec} s\n`);
    let cpuBefore = processCpuMs(server.pid);
    let at = performance.now();
    result = await openMix(server.base, server.key, data, mix, rate, {
      durationSec: lengthSec,
      warmupSec,
      windowSec: WINDOW_SEC,
      seed: 300,
      onWindow: (w) => {
        const cpu = processCpuMs(server.pid);
        const now = performance.now();
        const sample: Sample = {
          ...w,
          rssMiB: processRssMiB(server.pid),
          cpuShare: cpu === null || cpuBefore === null ? null : (cpu - cpuBefore) / (now - at),
        };
        cpuBefore = cpu;
        at = now;
        samples.push(sample);
        if (samples.length % 6 === 0) {
          process.stderr.write(
            `soak: ${Math.round(w.atSec)} s: ${fmt(w.rate)} req/s, p99 ${ms(w.all.p99)} ms, RSS ${fmt(sample.rssMiB ?? 0)} MiB\n`,
          );
        }
      },
    });
    memory = await memoryAtEnd(server.base, server.key);
  } finally {
    await server.stop();
  }

  const rss = samples.flatMap((s) => (s.rssMiB === null ? [] : [s.rssMiB]));
  const rssEnd = rss.at(-1) ?? Number.NaN;
  const rssMax = Math.max(...rss);
  const secondHalf = samples.slice(Math.floor(samples.length / 2));
  const rssSlope =
    slope(secondHalf.flatMap((s) => (s.rssMiB === null ? [] : [{ x: s.atSec, y: s.rssMiB }]))) * 60;
  const p99Slope = slope(secondHalf.map((s) => ({ x: s.atSec, y: s.all.p99 }))) * 60;
  const firstMinute = samples.slice(0, 6);
  const lastMinute = samples.slice(-6);
  const medianP99 = (xs: Sample[]) => {
    const sorted = xs.map((s) => s.all.p99).sort((a, b) => a - b);
    return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
  };

  const rssChart = writeChart(join(PLOT_DIR, 'soak-rss.svg'), {
    title: `Soak: server RSS (${fmt(data.dataset.total)} memories, ${fmt(rate)} req/s)`,
    xLabel: 'seconds',
    yLabel: 'MiB',
    series: [
      { name: 'RSS', points: samples.map((s) => ({ x: s.atSec, y: s.rssMiB ?? Number.NaN })) },
    ],
    hLines: [{ y: TARGET_RSS_MIB, label: `target ${TARGET_RSS_MIB} MiB` }],
  });
  const latencyChart = writeChart(join(PLOT_DIR, 'soak-latency.svg'), {
    title: 'Soak: latency per 10-s window',
    xLabel: 'seconds',
    yLabel: 'ms (from due time)',
    yScale: 'log',
    series: (['p50', 'p99', 'max'] as const).map((q) => ({
      name: q,
      points: samples.map((s) => ({ x: s.atSec, y: s.all[q] })),
    })),
  });
  const rel = (path: string) => path.slice(PLOT_DIR.length + 1);
  const inherited = inheritedSettings();
  const errors = result.errors;

  return {
    title: `Soak: ${fmt(lengthSec / 60, 1)} minutes of the realistic mix on ${fmt(data.dataset.total)} memories`,
    command: `npm run bench -- soak --length ${lengthSec} --users ${mix.users} --memories ${mix.memories}${opts.extra?.rate ? ` --rate ${opts.extra.rate}` : ''}`,
    columns: ['figure', 'value', 'target'],
    rows: [
      ['offered rate req/s', fmt(rate), '—'],
      ['achieved rate req/s', fmt(result.achievedRate), '—'],
      ['server RSS before the soak MiB', rssBefore === null ? '—' : fmt(rssBefore), '—'],
      [
        'server RSS at the end MiB',
        fmt(rssEnd),
        `≤ ${TARGET_RSS_MIB}: ${rssEnd <= TARGET_RSS_MIB ? 'met' : '**not met**'}`,
      ],
      ['server RSS max MiB', fmt(rssMax), '—'],
      [
        'at the end: V8 heap used / reserved MiB',
        `${fmt(memory.heapUsed)} / ${fmt(memory.heapTotal)}`,
        '—',
      ],
      [
        'at the end: array buffers MiB (search indexes, L1 bodies)',
        `${fmt(memory.arrayBuffers)} (${fmt(memory.searchIndexes)}, ${fmt(memory.l1Bodies)})`,
        '—',
      ],
      [
        'search indexes held; hits / builds (for session starts, ahead of first searches) / refused (of which built for one search)',
        `${fmt(memory.search.indexes)}; ${fmt(memory.search.hits)} / ${fmt(memory.search.builds)} (${fmt(memory.search.startBuilds)}, ${fmt(memory.search.warmBuilds)}) / ${fmt(memory.search.refused)} (${fmt(memory.search.transient)})`,
        '—',
      ],
      ['RSS slope, second half, MiB/min', fmt(rssSlope, 2), '≈ 0'],
      ['p99 first minute ms (median of windows)', ms(medianP99(firstMinute)), '—'],
      ['p99 last minute ms (median of windows)', ms(medianP99(lastMinute)), '—'],
      ['p99 slope, second half, ms/min', fmt(p99Slope, 2), '≈ 0'],
      ['p99 whole soak ms', ms(result.all.p99), '—'],
      ['errors / non-2xx', `${errors} / ${result.non2xx}`, '0 / 0'],
    ],
    notes: [
      `Data: ${data.describe}.`,
      mixDescription(mix.vus, mix.sockets),
      measuredSaturation === null
        ? `Rate given with --rate.`
        : `Rate: half the saturation measured first (closed loop, the same ${fmt(mix.vus)} users on ${mix.sockets} connections, ${opts.durationSec} s: ${fmt(measuredSaturation)} req/s).`,
      `RSS from /proc/<pid>/status (VmRSS) of the server at the end of every ${WINDOW_SEC}-s window; the server runs with the default settings (L1 cache ${fmt(64)} MiB, search indexes ${fmt(128)} MiB)${inherited.length === 0 ? '' : `, but ${inherited.join(', ')} (from the bench's environment)`}.`,
      `Plots: [RSS](${rel(rssChart)}), [latency](${rel(latencyChart)}).`,
    ],
    sections: [
      {
        heading: 'Every minute (the last 10-s window of each)',
        columns: ['s', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'server CPU', 'RSS MiB'],
        rows: samples
          .filter((_, i) => i % 6 === 5 || i === samples.length - 1)
          .map((s) => [
            fmt(s.atSec),
            fmt(s.rate),
            ms(s.all.p50),
            ms(s.all.p99),
            ms(s.all.max),
            String(s.errors),
            s.cpuShare === null ? '—' : `${Math.round(s.cpuShare * 100)}%`,
            s.rssMiB === null ? '—' : fmt(s.rssMiB),
          ]),
      },
    ],
    data: { mix, lengthSec, rate, measuredSaturation, rssBefore, memory, samples, result },
  };
}
