/**
 * `npm run bench:compare [-- --baseline DIR] [--current DIR] [--tolerance 0.15]
 * [--latency-tolerance 1] [scenario …]`: compares the ratio figures (and, where a table has no
 * ratio, the p50 latencies) of the latest benchmark results with the committed baseline, prints
 * a Markdown table and exits 1 when a figure regressed beyond the tolerance, 0 otherwise.
 *
 * Baseline: `bench/baseline/<scenario>.json`; current: `bench/results/<scenario>-latest.json`
 * (either name is accepted in either directory). Scenarios default to every one with a file in
 * either directory; one without a baseline file is reported and skipped.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  compare,
  DEFAULT_TOLERANCE,
  type Delta,
  extractFigures,
  type Figure,
} from './lib/compare-results.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    baseline: { type: 'string', default: join(REPO_ROOT, 'bench', 'baseline') },
    current: { type: 'string', default: join(REPO_ROOT, 'bench', 'results') },
    tolerance: { type: 'string', default: String(DEFAULT_TOLERANCE.ratio) },
    'latency-tolerance': { type: 'string', default: String(DEFAULT_TOLERANCE.latency) },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  process.stdout.write(
    'npm run bench:compare [-- --baseline DIR] [--current DIR] [--tolerance 0.15] [--latency-tolerance 1] [scenario …]\n',
  );
  process.exit(0);
}

function fraction(text: string, option: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`--${option} must be a non-negative number, got ${text}\n`);
    process.exit(2);
  }
  return n;
}

const tolerance = {
  ratio: fraction(values.tolerance, 'tolerance'),
  latency: fraction(values['latency-tolerance'], 'latency-tolerance'),
};
const baselineDir = resolve(values.baseline);
const currentDir = resolve(values.current);

/** `<scenario>.json` or `<scenario>-latest.json` in `dir`, whichever exists first. */
function resultFile(dir: string, scenario: string): string | undefined {
  return [`${scenario}.json`, `${scenario}-latest.json`]
    .map((name) => join(dir, name))
    .find((path) => existsSync(path));
}

/** Scenarios with a result file in `dir` (`x.json` or `x-latest.json`, not stamped runs). */
function scenariosIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && !/-\d{8}T\d{6}Z\.json$/.test(f))
    .map((f) => f.replace(/(-latest)?\.json$/, ''));
}

function figuresOf(path: string): Figure[] {
  return extractFigures(JSON.parse(readFileSync(path, 'utf8')));
}

const scenarios =
  positionals.length > 0
    ? positionals
    : [...new Set([...scenariosIn(baselineDir), ...scenariosIn(currentDir)])].sort();

const skipped: string[] = [];
const rows: string[] = [];
const missing: string[] = [];
let regressions = 0;
let improvements = 0;
let elsewhere = 0;
let compared = 0;

const number = (n: number) => (Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(4))));
const percent = (change: number) =>
  Number.isFinite(change) ? `${change >= 0 ? '+' : ''}${(change * 100).toFixed(1)}%` : 'n/a';

for (const scenario of scenarios) {
  const baseFile = resultFile(baselineDir, scenario);
  const currentFile = resultFile(currentDir, scenario);
  if (!baseFile) {
    skipped.push(`${scenario}: no baseline file in ${baselineDir}, skipped`);
    continue;
  }
  if (!currentFile) {
    skipped.push(`${scenario}: no current result in ${currentDir}, skipped`);
    continue;
  }
  const result = compare(figuresOf(baseFile), figuresOf(currentFile), tolerance);
  const verdicts: [Delta[], string][] = [
    [result.regressions, '**regression**'],
    [result.improvements, 'improvement'],
    [result.unchanged, 'ok'],
  ];
  for (const [deltas, verdict] of verdicts) {
    for (const d of deltas) {
      const direction = d.better === 'higher' ? '↑' : '↓';
      rows.push(
        `| ${d.name} (${d.kind}, ${direction} better) | ${number(d.baseline)} | ${number(d.current)} | ${percent(d.change)} | ${verdict} |`,
      );
    }
  }
  for (const d of result.elsewhere) {
    rows.push(
      `| ${d.name} (${d.kind}) | ${number(d.baseline)} | ${number(d.current)} | ${percent(d.change)} | not compared: offered ${number(d.offered?.baseline ?? 0)} against ${number(d.offered?.current ?? 0)} req/s |`,
    );
  }
  elsewhere += result.elsewhere.length;
  compared += result.regressions.length + result.improvements.length + result.unchanged.length;
  regressions += result.regressions.length;
  improvements += result.improvements.length;
  missing.push(...result.missing);
}

const out: string[] = [
  `# Benchmark regression check`,
  '',
  `Baseline ${baselineDir}, current ${currentDir}; tolerance ${tolerance.ratio * 100}% for ratios, ${tolerance.latency * 100}% for latencies.`,
  '',
];
if (rows.length > 0) {
  out.push('| figure | baseline | current | change | verdict |', '| --- | --- | --- | --- | --- |');
  out.push(...rows, '');
}
for (const line of skipped) out.push(`- ${line}`);
for (const name of missing) out.push(`- missing in current results: ${name}`);
if (skipped.length > 0 || missing.length > 0) out.push('');
out.push(
  `${compared} figures compared: ${regressions} regression${regressions === 1 ? '' : 's'}, ${improvements} improvement${improvements === 1 ? '' : 's'}, ${missing.length} missing; ${elsewhere} latenc${elsewhere === 1 ? 'y' : 'ies'} not compared (measured at another offered rate).`,
);
process.stdout.write(`${out.join('\n')}\n`);
process.exitCode = regressions > 0 ? 1 : 0;
