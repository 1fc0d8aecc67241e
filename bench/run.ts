/**
 * `npm run bench -- [scenario…] [--duration S] [--runs N] [--warmup S] [scenario options]`:
 * runs the scenarios named (by default {@link DEFAULT_SCENARIOS}) one after the other, prints
 * each one's Markdown table and writes bench/results/<scenario>-<stamp>.{json,md} and
 * <scenario>-latest.{json,md}. Scenarios of the realistic mix run in one process share one
 * seeded data set.
 */
import { relative } from 'node:path';
import { parseArgs } from 'node:util';
import { runCleanups } from './lib/cleanup.ts';
import { MIX_OPTIONS } from './lib/mix-setup.ts';
import {
  checkCodeUnchanged,
  machineInfo,
  markdownReport,
  type ScenarioModule,
  type ScenarioOptions,
  writeResults,
} from './lib/report.ts';
import { REPO_ROOT } from './lib/server-process.ts';
import { SOAK_OPTIONS } from './soak.ts';
import { STRESS_OPTIONS } from './stress.ts';

/** A scenario: what it measures, its own `--name value` options (help text by name), its module. */
interface Scenario {
  about: string;
  options?: Record<string, string>;
  load: () => Promise<ScenarioModule>;
}

/** Scenarios by name; each is a module loaded only when asked for. */
const SCENARIOS: Record<string, Scenario> = {
  writes: {
    about: 'single and batch write throughput per store, against the node:http ceiling',
    load: () => import('./writes.ts'),
  },
  search: {
    about: 'ranking 50/1,000/10,000 memories in process, and HTTP search of warm users',
    options: {
      users: 'N       users seeded for the HTTP part (default 10)',
      memories: 'N    memories per user (default 1000)',
      connections: 'N concurrent connections of the HTTP load (default 8)',
    },
    load: () => import('./search.ts'),
  },
  cache: {
    about: 'hit ratio on a Zipf workload (L1, L1+Redis L2) and warm-read throughput vs ceilings',
    options: {
      users: 'N     users seeded and drawn from (default 100000)',
      zipf: 'S      Zipf exponent of user popularity (default 1.0)',
      'write-ratio': 'R  share of writes in the workload (default 0.1)',
      redis: 'on|off|auto  L2 runs (default auto: own redis-server, else a Redis answering)',
      l1: 'MiB,…  L1 sizes tried (ENGRAM_CACHE_L1_MAX_BYTES; default 64,512)',
    },
    load: () => import('./cache.ts'),
  },
  sessions: {
    about: 'preload latency cold/warm per store, and session-start throughput vs ceilings',
    options: {
      users: 'N       users seeded per store (default 200)',
      memories: 'N    memories per user (default 1000)',
      connections: 'N concurrent connections of the HTTP load (default 8)',
    },
    load: () => import('./sessions.ts'),
  },
  mix: {
    about:
      'realistic mix of 1,000 virtual users: saturation vs ceilings, concurrency sweep, open loop at 25/50/75%',
    options: MIX_OPTIONS,
    load: () => import('./mix.ts'),
  },
  stress: {
    about: 'open-loop ramp of the realistic mix to its breaking point (p99 > 100 ms or errors)',
    options: STRESS_OPTIONS,
    load: () => import('./stress.ts'),
  },
  soak: {
    about:
      'the realistic mix at half its saturation for --length s on 1,000,000 memories: RSS, latency',
    options: SOAK_OPTIONS,
    load: () => import('./soak.ts'),
  },
};

/** What `npm run bench` runs without a scenario: the end-to-end runs on one seeded data set. */
export const DEFAULT_SCENARIOS = ['mix', 'stress'];

const USAGE = `Usage: npm run bench -- [scenario…] [--duration S] [--runs N] [--warmup S]

Without a scenario: ${DEFAULT_SCENARIOS.join(' and ')} (one seeded data set).

Scenarios:
${Object.entries(SCENARIOS)
  .map(([name, s]) => `  ${name.padEnd(10)} ${s.about}`)
  .join('\n')}

Options:
  --duration S   seconds per measurement (default 10)
  --runs N       measurements per figure; the median is reported (default 3)
  --warmup S     seconds of unrecorded load before each measurement (default 1)
${Object.entries(SCENARIOS)
  .filter(([, s]) => s.options)
  .map(
    ([name, s]) =>
      `\nOptions of ${name}:\n${Object.entries(s.options ?? {})
        .map(([option, help]) => `  --${option} ${help}`)
        .join('\n')}`,
  )
  .join('\n')}`;

function positive(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`--${name} must be > 0`);
  return value;
}

async function main(argv: string[]): Promise<number> {
  // The scenarios' own options are known once their names are.
  const named = argv.filter((a) => Object.hasOwn(SCENARIOS, a));
  const own: Record<string, string> = Object.assign(
    {},
    ...named.map((n) => SCENARIOS[n]?.options ?? {}),
  );
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      duration: { type: 'string' },
      runs: { type: 'string' },
      warmup: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      ...Object.fromEntries(Object.keys(own).map((o) => [o, { type: 'string' as const }])),
    },
  });
  const unknown = positionals.filter((p) => !Object.hasOwn(SCENARIOS, p));
  if (values.help || unknown.length > 0) {
    for (const name of unknown) process.stderr.write(`Unknown scenario "${name}".\n`);
    process.stderr.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const names = positionals.length > 0 ? positionals : DEFAULT_SCENARIOS;
  const options: ScenarioOptions = {
    durationSec: positive(values.duration, 10, 'duration'),
    runs: Math.round(positive(values.runs, 3, 'runs')),
    warmupSec: positive(values.warmup, 1, 'warmup'),
    extra: Object.fromEntries(
      Object.keys(own).flatMap((o) => {
        const value = (values as Record<string, unknown>)[o];
        return typeof value === 'string' ? [[o, value]] : [];
      }),
    ),
  };

  for (const name of names) {
    const scenario = SCENARIOS[name] as Scenario;
    // Each scenario's report lists only its own options.
    const mine = {
      ...options,
      extra: Object.fromEntries(
        Object.entries(options.extra ?? {}).filter(([o]) =>
          Object.hasOwn(scenario.options ?? {}, o),
        ),
      ),
    };
    const machine = machineInfo();
    const startedAt = new Date();
    process.stderr.write(`\n=== ${name} ===\n`);
    const mod = await scenario.load();
    const result = await mod.run(mine);
    checkCodeUnchanged(machine);
    if (machine.changedDuringRun) {
      process.stderr.write('\n!!!!! The code changed during the run (see the report) !!!!!\n');
    }
    process.stdout.write(`\n${markdownReport(name, result, machine, mine, startedAt)}\n`);
    const written = writeResults(name, result, machine, mine, startedAt);
    process.stdout.write(`Results: ${written.map((p) => relative(REPO_ROOT, p)).join(', ')}\n`);
  }
  return 0;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping servers and dropping schemas…\n`);
    void runCleanups().finally(() => process.exit(130));
  });
}

main(process.argv.slice(2))
  .then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(
        `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exitCode = 1;
    },
  )
  .finally(runCleanups);
