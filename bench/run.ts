/**
 * `npm run bench -- <scenario> [--duration S] [--runs N] [--warmup S]`: runs one benchmark
 * scenario, prints its Markdown table and writes bench/results/<scenario>-<stamp>.{json,md}
 * and <scenario>-latest.{json,md}.
 */
import { relative } from 'node:path';
import { parseArgs } from 'node:util';
import { runCleanups } from './lib/cleanup.ts';
import {
  machineInfo,
  markdownReport,
  type ScenarioModule,
  type ScenarioOptions,
  writeResults,
} from './lib/report.ts';
import { REPO_ROOT } from './lib/server-process.ts';

/** Scenarios by name; each is a module loaded only when asked for. */
const SCENARIOS: Record<string, { about: string; load: () => Promise<ScenarioModule> }> = {
  writes: {
    about: 'single and batch write throughput per store, against the node:http ceiling',
    load: () => import('./writes.ts'),
  },
};

const USAGE = `Usage: npm run bench -- <scenario> [--duration S] [--runs N] [--warmup S]

Scenarios:
${Object.entries(SCENARIOS)
  .map(([name, s]) => `  ${name.padEnd(10)} ${s.about}`)
  .join('\n')}

Options:
  --duration S   seconds per measurement (default 10)
  --runs N       measurements per figure; the median is reported (default 3)
  --warmup S     seconds of unrecorded load before each measurement (default 1)`;

function positive(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`--${name} must be > 0`);
  return value;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      duration: { type: 'string' },
      runs: { type: 'string' },
      warmup: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [name] = positionals;
  const scenario = name ? SCENARIOS[name] : undefined;
  if (values.help || !name || !scenario) {
    if (name && !scenario) process.stderr.write(`Unknown scenario "${name}".\n`);
    process.stderr.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const options: ScenarioOptions = {
    durationSec: positive(values.duration, 10, 'duration'),
    runs: Math.round(positive(values.runs, 3, 'runs')),
    warmupSec: positive(values.warmup, 1, 'warmup'),
  };

  const machine = machineInfo();
  const startedAt = new Date();
  const mod = await scenario.load();
  const result = await mod.run(options);
  process.stdout.write(`\n${markdownReport(name, result, machine, options, startedAt)}\n`);
  const written = writeResults(name, result, machine, options, startedAt);
  process.stdout.write(`Results: ${written.map((p) => relative(REPO_ROOT, p)).join(', ')}\n`);
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
