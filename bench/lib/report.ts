import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './server-process.ts';

/** Options every scenario receives from `bench/run.ts`. */
export interface ScenarioOptions {
  /** Seconds per measurement. @default 10 */
  durationSec: number;
  /** Measurements per figure; the median is reported. @default 3 */
  runs: number;
  /** Seconds of unrecorded load before each measurement. @default 1 */
  warmupSec: number;
  /** The scenario's own options as given on the command line (`--users 20000` → users). */
  extra?: Record<string, string>;
}

/** A further table of a result, printed under its heading after the main table. */
export interface ReportSection {
  heading: string;
  columns: string[];
  rows: string[][];
  /** Lines printed under this table. */
  notes?: string[];
  /**
   * False when `bench:compare` should skip this table: its rows are named by a measured value
   * (the stress ramp's steps, by their offered rate), so no row matches between two runs.
   */
  compare?: false;
  /**
   * The open-loop rate (req/s) this table's latencies were measured at, for a table without an
   * `offered req/s` column: `bench:compare` compares them only with a run that offered about
   * the same rate.
   */
  offeredRate?: number;
}

/** What a scenario hands back: a table for people and raw data for files. */
export interface ScenarioResult {
  title: string;
  columns: string[];
  rows: string[][];
  /** Lines printed under the table (skips, methods, caveats). */
  notes: string[];
  /** More tables, after the main one and its notes. */
  sections?: ReportSection[];
  data: unknown;
  /** The command that reproduces the result, when it is not `npm run bench -- <scenario>`. */
  command?: string;
}

/** A scenario module: `bench/<name>.ts` exports `run`. */
export interface ScenarioModule {
  run: (options: ScenarioOptions) => Promise<ScenarioResult>;
}

/** The machine and code a result was measured on. */
export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  platform: string;
  loadAverage: number[];
  gitCommit: string;
  /** True when the working tree had uncommitted changes. */
  gitDirty: boolean;
  /** Hash of the server code (src/ and package-lock.json, committed and uncommitted). */
  gitFingerprint: string;
  /** Set after the run when the server code changed while it ran. */
  changedDuringRun?: { gitCommit: string; gitDirty: boolean };
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

/** Describes this machine and the checked-out commit. */
export function machineInfo(): MachineInfo {
  const cpu = cpus();
  return {
    cpuModel: cpu[0]?.model.trim() ?? 'unknown',
    cores: cpu.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${release()} ${process.arch}`,
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
    gitCommit: git(['rev-parse', 'HEAD']) || 'unknown',
    gitDirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
    gitFingerprint: codeFingerprint(),
  };
}

/** The paths whose content is the code a server runs. */
const CODE_PATHS = ['src', 'package-lock.json'];

/**
 * A hash of the server code: HEAD's trees of {@link CODE_PATHS} and their uncommitted changes
 * (`git diff HEAD`); changes elsewhere (docs, tests, bench) do not count.
 */
export function codeFingerprint(): string {
  const hash = createHash('sha256');
  for (const path of CODE_PATHS) hash.update(git(['rev-parse', `HEAD:${path}`])).update('\0');
  hash.update(git(['diff', 'HEAD', '--', ...CODE_PATHS]));
  hash.update(git(['ls-files', '--others', '--exclude-standard', '--', 'src']));
  return hash.digest('hex').slice(0, 16);
}

/**
 * Notes in `machine` when the code changed since it was taken (someone committed or edited
 * tracked files during the run): the figures then mix two versions.
 */
export function checkCodeUnchanged(machine: MachineInfo): void {
  if (codeFingerprint() === machine.gitFingerprint) return;
  machine.changedDuringRun = {
    gitCommit: git(['rev-parse', 'HEAD']) || 'unknown',
    gitDirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
  };
}

/** A Markdown table; numbers should already be formatted. */
export function markdownTable(columns: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(columns), line(columns.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The Markdown report of a result. */
export function markdownReport(
  scenario: string,
  result: ScenarioResult,
  machine: MachineInfo,
  options: ScenarioOptions,
  startedAt: Date,
): string {
  const extra = Object.entries(options.extra ?? {})
    .map(([name, value]) => ` --${name} ${value}`)
    .join('');
  return [
    `# ${result.title}`,
    '',
    result.command
      ? `Run ${startedAt.toISOString()}: \`${result.command}\`.`
      : `Run ${startedAt.toISOString()}: \`npm run bench -- ${scenario} --duration ${options.durationSec} --runs ${options.runs}${extra}\`, ${options.warmupSec} s warm-up per measurement, median of ${options.runs} run${options.runs === 1 ? '' : 's'}.`,
    '',
    markdownTable(result.columns, result.rows),
    '',
    ...result.notes.map((n) => `- ${n}`),
    '',
    ...(result.sections ?? []).flatMap((section) => [
      `## ${section.heading}`,
      '',
      markdownTable(section.columns, section.rows),
      '',
      ...(section.notes ?? []).map((n) => `- ${n}`),
      ...(section.notes?.length ? [''] : []),
    ]),
    `Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.platform}, load average ${machine.loadAverage.join(' ')} at start.`,
    `Commit: ${machine.gitCommit}${machine.gitDirty ? ' (working tree had uncommitted changes)' : ''}.`,
    ...(machine.changedDuringRun
      ? [
          `**The code changed during the run** (at the end: ${machine.changedDuringRun.gitCommit}${machine.changedDuringRun.gitDirty ? ' with uncommitted changes' : ''}): servers started at different times may have run different code.`,
        ]
      : []),
    '',
  ].join('\n');
}

/** `20260102T030405Z`: ISO 8601 basic format, safe in file names. */
export function fileStamp(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

/**
 * Writes `bench/results/<scenario>-<stamp>.{json,md}` and `<scenario>-latest.{json,md}`;
 * returns the paths written.
 */
export function writeResults(
  scenario: string,
  result: ScenarioResult,
  machine: MachineInfo,
  options: ScenarioOptions,
  startedAt: Date,
): string[] {
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const json = `${JSON.stringify(
    {
      scenario,
      title: result.title,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      options,
      machine,
      table: { columns: result.columns, rows: result.rows },
      notes: result.notes,
      sections: result.sections ?? [],
      data: result.data,
    },
    null,
    2,
  )}\n`;
  const md = markdownReport(scenario, result, machine, options, startedAt);
  const written: string[] = [];
  for (const name of [`${scenario}-${fileStamp(startedAt)}`, `${scenario}-latest`]) {
    for (const [ext, text] of [
      ['json', json],
      ['md', md],
    ] as const) {
      const path = join(dir, `${name}.${ext}`);
      writeFileSync(path, text);
      written.push(path);
    }
  }
  return written;
}
