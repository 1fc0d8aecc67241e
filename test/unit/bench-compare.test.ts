/**
 * `npm run bench:compare`: figures extracted from result JSON, the comparison's tolerance, and
 * the command's exit code against an unchanged and a deliberately slowed copy of the baseline.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  compare,
  extractFigures,
  type Figure,
  parseCell,
} from '../../bench/lib/compare-results.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BASELINE_DIR = join(REPO_ROOT, 'bench', 'baseline');
const SCENARIOS = ['search', 'writes', 'cache', 'sessions'];
const TOLERANCE = { ratio: 0.15, latency: 1 };

/** The slowed figure: Engram's single SQLite write as a share of node:http. */
const SLOWED_ROW = ['single write', 'engram sqlite'];
const SLOWED_NAME = 'writes › single write, engram sqlite › of node:http';

interface ResultJson {
  scenario: string;
  table: { columns: string[]; rows: string[][] };
  sections: { heading: string; columns: string[]; rows: string[][] }[];
}

function readBaseline(scenario: string): ResultJson {
  return JSON.parse(readFileSync(join(BASELINE_DIR, `${scenario}.json`), 'utf8')) as ResultJson;
}

/** The baseline's figures with `name`'s value multiplied by `factor`. */
function scaled(figures: Figure[], name: string, factor: number): Figure[] {
  return figures.map((f) => (f.name === name ? { ...f, value: f.value * factor } : f));
}

const synthetic = {
  scenario: 'demo',
  table: {
    columns: ['workload', 'target', 'req/s', 'p50 ms', 'of node:http', 'of fastify'],
    rows: [
      ['read', 'node:http ceiling', '12,000', '0', '1.000', '1.050'],
      ['read', 'engram', '2,595', '2', '0.249', '0.262'],
    ],
  },
  sections: [
    {
      heading: 'Ranking',
      columns: ['memories', 'rank p50 µs', 'p50 / plain'],
      rows: [
        ['50', '2.88', '3.59'],
        ['1,000', '15.9', '2.66'],
      ],
    },
    {
      heading: 'Latency only',
      columns: ['store', 'app p50 ms', 'app p99 ms'],
      rows: [['sqlite', '1,234.5', '9.0']],
    },
    {
      heading: 'Single row',
      columns: ['req/s', 'of cached read'],
      rows: [['790', '0.046']],
    },
    {
      heading: 'Steps',
      compare: false,
      columns: ['offered req/s', 'p50 ms'],
      rows: [
        ['542', '3.1'],
        ['631', '4.2'],
      ],
    },
  ],
};

describe('bench:compare figure extraction', () => {
  it('parses formatted cells with thousands separators and percentages', () => {
    assert.deepEqual(parseCell('2,595'), { value: 2595, resolution: 1 });
    assert.equal(parseCell('0.126')?.value, 0.126);
    assert.equal(parseCell('0.126')?.resolution, 0.001);
    assert.equal(parseCell('1,234,567.5')?.value, 1234567.5);
    assert.equal(parseCell('90.85%')?.value, 0.9085);
    for (const cell of ['—', 'n/a', '64 MiB', '**no**', '0 of 629,422', '12,34']) {
      assert.equal(parseCell(cell), undefined, cell);
    }
  });

  it('extracts ratio and latency figures from a synthetic result', () => {
    const figures = extractFigures(synthetic);
    const byName = new Map(figures.map((f) => [f.name, f]));
    assert.deepEqual(
      figures.map((f) => f.name),
      [
        'demo › read, engram › of node:http',
        'demo › read, engram › of fastify',
        'demo › Ranking › memories 50 › p50 / plain',
        'demo › Ranking › memories 1,000 › p50 / plain',
        'demo › Latency only › sqlite › app p50 ms',
        'demo › Single row › of cached read',
      ],
    );
    assert.deepEqual(byName.get('demo › read, engram › of node:http'), {
      scenario: 'demo',
      name: 'demo › read, engram › of node:http',
      value: 0.249,
      better: 'higher',
      kind: 'ratio',
      resolution: 0.001,
    });
    assert.equal(byName.get('demo › Ranking › memories 1,000 › p50 / plain')?.better, 'lower');
    const latency = byName.get('demo › Latency only › sqlite › app p50 ms');
    assert.equal(latency?.kind, 'latency');
    assert.equal(latency?.better, 'lower');
    assert.equal(latency?.value, 1234.5);
    assert.equal(byName.get('demo › Single row › of cached read')?.value, 0.046);
  });

  it('extracts finite figures from every committed baseline file', () => {
    for (const scenario of SCENARIOS) {
      const figures = extractFigures(readBaseline(scenario));
      assert.ok(figures.length > 0, `${scenario}: no figures`);
      assert.ok(
        figures.some((f) => f.kind === 'ratio'),
        `${scenario}: no ratio figure`,
      );
      for (const f of figures) {
        assert.ok(Number.isFinite(f.value), `${f.name}: ${f.value}`);
        assert.equal(f.scenario, scenario);
      }
      assert.equal(new Set(figures.map((f) => f.name)).size, figures.length, 'unique names');
    }
    assert.ok(extractFigures(readBaseline('writes')).some((f) => f.name === SLOWED_NAME));
  });

  it('ignores input without tables', () => {
    assert.deepEqual(extractFigures(null), []);
    assert.deepEqual(extractFigures({ scenario: 'x', table: { columns: 'no' } }), []);
  });
});

describe('bench:compare comparison', () => {
  const all = SCENARIOS.flatMap((s) => extractFigures(readBaseline(s)));

  it('finds no regression when baseline and current are identical', () => {
    const result = compare(all, structuredClone(all), TOLERANCE);
    assert.deepEqual(result.regressions, []);
    assert.deepEqual(result.improvements, []);
    assert.deepEqual(result.missing, []);
    assert.equal(result.unchanged.length, all.length);
  });

  it('flags a ratio worsened by 30% as a regression', () => {
    const result = compare(all, scaled(all, SLOWED_NAME, 0.7), TOLERANCE);
    assert.deepEqual(
      result.regressions.map((d) => d.name),
      [SLOWED_NAME],
    );
    assert.ok(Math.abs((result.regressions[0]?.change ?? 0) + 0.3) < 1e-9);
  });

  it('flags a lower-is-better ratio raised by 30% as a regression', () => {
    const name = 'search › memories 1,000 › p50 / plain';
    const result = compare(all, scaled(all, name, 1.3), TOLERANCE);
    assert.deepEqual(
      result.regressions.map((d) => d.name),
      [name],
    );
  });

  it('keeps a 10% change within the 15% tolerance', () => {
    const worse = compare(all, scaled(all, SLOWED_NAME, 0.9), TOLERANCE);
    assert.deepEqual(worse.regressions, []);
    assert.deepEqual(worse.improvements, []);
    const better = compare(all, scaled(all, SLOWED_NAME, 1.1), TOLERANCE);
    assert.deepEqual(better.regressions, []);
    assert.deepEqual(better.improvements, []);
  });

  it('reports a 30% better ratio as an improvement', () => {
    const result = compare(all, scaled(all, SLOWED_NAME, 1.3), TOLERANCE);
    assert.deepEqual(result.regressions, []);
    assert.deepEqual(
      result.improvements.map((d) => d.name),
      [SLOWED_NAME],
    );
  });

  it('gives latencies their own, more generous tolerance', () => {
    const latency = all.find((f) => f.kind === 'latency');
    assert.ok(latency, 'a latency figure in the baseline');
    assert.deepEqual(compare(all, scaled(all, latency.name, 1.5), TOLERANCE).regressions, []);
    assert.deepEqual(
      compare(all, scaled(all, latency.name, 2.5), TOLERANCE).regressions.map((d) => d.name),
      [latency.name],
    );
  });

  it('does not count a difference within the display resolution', () => {
    const tiny: Figure = {
      scenario: 's',
      name: 's › tiny',
      value: 0.003,
      better: 'higher',
      kind: 'ratio',
      resolution: 0.001,
    };
    assert.deepEqual(compare([tiny], [{ ...tiny, value: 0.002 }], TOLERANCE).regressions, []);
    assert.equal(compare([tiny], [{ ...tiny, value: 0.001 }], TOLERANCE).regressions.length, 1);
  });

  it('compares a latency only with a run that offered about the same rate', () => {
    const result = {
      scenario: 'loop',
      table: { columns: ['x', 'of fastify'], rows: [['engram', '0.200']] },
      sections: [
        {
          heading: 'Steps',
          columns: ['load', 'offered req/s', 'reads p50 ms'],
          rows: [['50%', '795', '2.32']],
        },
        {
          heading: 'Per operation',
          offeredRate: 795,
          columns: ['op', 'p50 ms'],
          rows: [['append', '5.31']],
        },
      ],
    };
    const base = extractFigures(result);
    assert.deepEqual(
      base.filter((f) => f.kind === 'latency').map((f) => f.offered),
      [795, 795],
    );
    // The same rate, twice as slow (beyond the latency tolerance): regressions.
    const slower = base.map((f) => (f.kind === 'latency' ? { ...f, value: f.value * 2.5 } : f));
    assert.equal(compare(base, slower, TOLERANCE).regressions.length, 2);
    // The same slowdown at a rate 39% higher: set aside, neither failed nor passed.
    const elsewhere = slower.map((f) => (f.offered ? { ...f, offered: 1_104 } : f));
    const result2 = compare(base, elsewhere, TOLERANCE);
    assert.deepEqual(result2.regressions, []);
    assert.deepEqual(
      result2.elsewhere.map((d) => [d.name, d.offered]),
      [
        ['loop › Steps › reads p50 ms', { baseline: 795, current: 1_104 }],
        ['loop › Per operation › append › p50 ms', { baseline: 795, current: 1_104 }],
      ],
    );
    // Within the ratio tolerance of the rate (10%), still compared.
    const near = slower.map((f) => (f.offered ? { ...f, offered: 870 } : f));
    assert.equal(compare(base, near, TOLERANCE).regressions.length, 2);
    // A ratio is compared whatever the rates.
    assert.equal(compare(base, near, TOLERANCE).unchanged.length, 1);
  });

  it('lists missing figures without failing', () => {
    const current = all.filter((f) => f.name !== SLOWED_NAME);
    const result = compare(all, current, TOLERANCE);
    assert.deepEqual(result.missing, [SLOWED_NAME]);
    assert.deepEqual(result.regressions, []);
  });
});

describe('bench:compare command', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'engram-bench-compare-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  const baselineDir = join(tmp, 'baseline');
  const unchangedDir = join(tmp, 'unchanged');
  const slowedDir = join(tmp, 'slowed');
  for (const dir of [baselineDir, unchangedDir, slowedDir]) mkdirSync(dir);
  for (const scenario of SCENARIOS) {
    const result = readBaseline(scenario);
    writeFileSync(join(baselineDir, `${scenario}.json`), JSON.stringify(result));
    writeFileSync(join(unchangedDir, `${scenario}-latest.json`), JSON.stringify(result));
    if (scenario === 'writes') {
      const slowed = structuredClone(result);
      const column = slowed.table.columns.indexOf('of node:http');
      const row = slowed.table.rows.find((r) => r[0] === SLOWED_ROW[0] && r[1] === SLOWED_ROW[1]);
      assert.ok(row && column >= 0, 'the slowed row and column exist');
      row[column] = (Number(row[column]) * 0.7).toFixed(3);
      writeFileSync(join(slowedDir, `${scenario}-latest.json`), JSON.stringify(slowed));
    } else {
      writeFileSync(join(slowedDir, `${scenario}-latest.json`), JSON.stringify(result));
    }
  }

  function runCompare(current: string) {
    return spawnSync(
      process.execPath,
      ['--import', 'tsx', 'bench/compare.ts', '--baseline', baselineDir, '--current', current],
      { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 },
    );
  }

  it('exits 1 and names the regressed figure against a slowed copy', () => {
    const run = runCompare(slowedDir);
    assert.equal(run.status, 1, run.stderr);
    const line = run.stdout.split('\n').find((l) => l.includes(SLOWED_NAME));
    assert.ok(line, run.stdout);
    assert.match(line, /regression/);
    assert.match(run.stdout, /1 regression,/);
  });

  it('exits 0 against an unchanged copy', () => {
    const run = runCompare(unchangedDir);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /0 regressions/);
    assert.doesNotMatch(run.stdout, /\*\*regression\*\*/);
  });
});
