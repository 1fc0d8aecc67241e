/**
 * Micro-benchmarks (tinybench) of hot in-process code paths, one file per subject here.
 * `npm run bench:micro` runs them all; `npm run bench:micro -- ranking tokenizing` only those.
 * Prints a Markdown table and writes `bench/results/micro-latest.{md,json}` and a timestamped copy.
 */
import { relative } from 'node:path';
import {
  checkCodeUnchanged,
  machineInfo,
  markdownTable,
  type ScenarioResult,
  writeResults,
} from '../lib/report.ts';
import { REPO_ROOT } from '../lib/server-process.ts';
import type { MicroResult } from './micro-result.ts';

const SUBJECTS: Record<string, () => Promise<{ run: () => Promise<MicroResult[]> }>> = {
  ranking: () => import('./ranking.ts'),
  tokenizing: () => import('./tokenizing.ts'),
  'key-hashing': () => import('./key-hashing.ts'),
  serialization: () => import('./serialization.ts'),
  'cache-get': () => import('./cache-get.ts'),
};

/** A duration in ns as ns, µs or ms with three significant digits. */
function time(ns: number): string {
  if (ns < 1000) return `${ns.toPrecision(3)} ns`;
  if (ns < 1e6) return `${(ns / 1000).toPrecision(3)} µs`;
  return `${(ns / 1e6).toPrecision(3)} ms`;
}

function ops(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

async function main(): Promise<void> {
  const asked = process.argv.slice(2).filter((a) => a !== '--');
  const unknown = asked.filter((a) => !(a in SUBJECTS));
  if (unknown.length > 0) {
    console.error(
      `unknown subject(s): ${unknown.join(', ')}; known: ${Object.keys(SUBJECTS).join(', ')}`,
    );
    process.exit(2);
  }
  const names = asked.length > 0 ? asked : Object.keys(SUBJECTS);
  const startedAt = new Date();
  const machine = machineInfo();
  const results: MicroResult[] = [];
  for (const name of names) {
    const load = SUBJECTS[name] as (typeof SUBJECTS)[string];
    console.error(`${name}…`);
    results.push(...(await (await load()).run()));
  }
  checkCodeUnchanged(machine);

  const columns = ['subject', 'task', 'ops/s', 'mean', 'p50', 'p99', 'samples'];
  const rows = results.map((r) => [
    r.subject,
    r.task,
    ops(r.opsPerSec),
    time(r.meanNs),
    time(r.p50Ns),
    time(r.p99Ns),
    String(r.samples),
  ]);
  const result: ScenarioResult = {
    title: 'Micro-benchmarks',
    columns,
    rows,
    notes: [
      `Subjects: ${names.join(', ')}. tinybench, one task after the other in one process: 100 ms warm-up, then 400 ms of calls, each call timed (mean, p50, p99 per call; ops/s = 1 / mean).`,
      'Per-call timing adds the timer overhead (tens of ns) to the fastest tasks: compare those between runs, not as absolute costs.',
    ],
    data: results,
    command: `npm run bench:micro${asked.length > 0 ? ` -- ${asked.join(' ')}` : ''}`,
  };
  console.log(markdownTable(columns, rows));
  const written = writeResults(
    'micro',
    result,
    machine,
    { durationSec: 0, runs: 1, warmupSec: 0 },
    startedAt,
  );
  for (const path of written) console.error(`wrote ${relative(REPO_ROOT, path)}`);
}

await main();
