/**
 * Regression check of benchmark results against a baseline (`npm run bench:compare`): picks
 * the figures of a result that survive a change of machine or moment — ratios to a ceiling
 * measured in the same run, and a few latencies where a table has no ratio — and compares them
 * with a relative tolerance. Pure: reading files and printing is `bench/compare.ts`'s job.
 */

/** One comparable figure of a result. */
export interface Figure {
  scenario: string;
  /** `scenario: [section heading: ][row label, ]column`; stable across runs of the same options. */
  name: string;
  value: number;
  better: 'higher' | 'lower';
  kind: 'ratio' | 'latency';
  /**
   * One unit of the last digit shown (0.001 for "0.196"): two roundings can differ by this much
   * without any change, so a smaller difference is never a regression or an improvement.
   */
  resolution?: number;
  /**
   * The open-loop rate (req/s) the figure was measured at, when its table says: a row's
   * `offered req/s` cell, or its section's `offeredRate`.
   */
  offered?: number;
}

/** A figure present in both baseline and current. */
export interface Delta {
  name: string;
  scenario: string;
  kind: Figure['kind'];
  better: Figure['better'];
  baseline: number;
  current: number;
  /** (current − baseline) / baseline; ±Infinity when the baseline is 0 and current is not. */
  change: number;
  /** The rates the two were measured at, when both are known. */
  offered?: { baseline: number; current: number };
}

export interface Tolerance {
  /** Relative worsening a ratio figure may show before it is a regression. @default 0.15 */
  ratio: number;
  /** The same for latency figures (noisier: generous). @default 1.0 */
  latency: number;
}

export const DEFAULT_TOLERANCE: Tolerance = { ratio: 0.15, latency: 1.0 };

export interface Comparison {
  regressions: Delta[];
  improvements: Delta[];
  unchanged: Delta[];
  /** Names of baseline figures the current results lack (not a failure). */
  missing: string[];
  /**
   * Latencies measured at open-loop rates further apart than the ratio tolerance: not compared.
   * The mix's steps offer shares of each run's own saturation, which moves with the machine
   * (1,577 and 2,168 req/s in two runs of one code an hour apart): a latency at another load
   * says nothing of the code.
   */
  elsewhere: Delta[];
}

interface Table {
  heading?: string;
  columns: string[];
  rows: string[][];
  offeredRate?: number;
}

/** Columns that hold a ratio, and whether higher is better. */
function ratioColumn(header: string): Figure['better'] | undefined {
  const h = header.trim().toLowerCase();
  if (/^of (node:http|fastify|cached read)$/.test(h)) return 'higher';
  if (h === 'p50 / plain') return 'lower';
  return undefined;
}

/** Median latency columns (`p50 ms`, `app p50 ms`, `rank p50 µs`), used only in ratio-less tables. */
function latencyColumn(header: string): boolean {
  return /(^|\s)p50 (ms|µs)$/i.test(header.trim());
}

/**
 * The number a formatted cell shows ("2,595", "0.249", "-3", "12.5%"), with the unit of its
 * last digit; undefined for anything else ("—", "n/a", "64 MiB", "**no**").
 */
export function parseCell(cell: string): { value: number; resolution: number } | undefined {
  const m = /^([-+]?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(%?)$/.exec(cell.trim());
  if (!m) return undefined;
  const [, sign, whole = '', fraction = '', percent] = m;
  const decimals = fraction.length;
  let value = Number(`${sign}${whole.replaceAll(',', '')}${decimals ? `.${fraction}` : ''}`);
  let resolution = 10 ** -decimals;
  if (percent) {
    value /= 100;
    resolution /= 100;
  }
  return Number.isFinite(value) ? { value, resolution } : undefined;
}

/**
 * The label of each row: the leading columns that hold no number in any row ("single write,
 * engram sqlite"); when there are none, a multi-row table's first column with its header
 * ("memories 1,000"), a single-row table no label.
 */
function rowLabels(table: Table): string[] {
  let labelColumns = 0;
  while (
    labelColumns < table.columns.length &&
    table.rows.every((row) => parseCell(row[labelColumns] ?? '') === undefined)
  ) {
    labelColumns++;
  }
  return table.rows.map((row) => {
    if (labelColumns > 0) return row.slice(0, labelColumns).join(', ');
    if (table.rows.length > 1) return `${table.columns[0] ?? ''} ${row[0] ?? ''}`.trim();
    return '';
  });
}

function tableFigures(scenario: string, table: Table): Figure[] {
  const ratios = table.columns.map(ratioColumn);
  const hasRatio = ratios.some((r) => r !== undefined);
  const labels = rowLabels(table);
  const offeredColumn = table.columns.findIndex((h) => h.trim().toLowerCase() === 'offered req/s');
  const figures: Figure[] = [];
  table.columns.forEach((header, c) => {
    const better = ratios[c] ?? (!hasRatio && latencyColumn(header) ? 'lower' : undefined);
    if (!better) return;
    const kind = ratios[c] ? 'ratio' : 'latency';
    table.rows.forEach((row, r) => {
      const label = labels[r] ?? '';
      // A ceiling's ratio to a ceiling is 1 or the noise between two ceilings: nothing of ours.
      if (/ceiling/i.test(label)) return;
      const parsed = parseCell(row[c] ?? '');
      if (!parsed) return;
      const name = [scenario, table.heading, label, header].filter(Boolean).join(' › ');
      const offered =
        offeredColumn >= 0 ? parseCell(row[offeredColumn] ?? '')?.value : table.offeredRate;
      figures.push({
        scenario,
        name,
        value: parsed.value,
        better,
        kind,
        resolution: parsed.resolution,
        ...(offered === undefined ? {} : { offered }),
      });
    });
  });
  return figures;
}

function isTable(value: unknown): value is Table {
  if (typeof value !== 'object' || value === null) return false;
  const { columns, rows } = value as Record<string, unknown>;
  return (
    Array.isArray(columns) &&
    columns.every((c) => typeof c === 'string') &&
    Array.isArray(rows) &&
    rows.every((row) => Array.isArray(row) && row.every((cell) => typeof cell === 'string'))
  );
}

/**
 * The comparable figures of a result JSON (`writeResults`' shape: `scenario`, `table`,
 * `sections`): ratio columns (`of node:http`, `of fastify`, `of cached read`: higher is better;
 * `p50 / plain`: lower is better) and, in tables without any ratio column, the p50 latency
 * columns (lower is better). Rows of a ceiling are left out, and so are sections marked
 * `compare: false` (rows named by a measured value).
 */
export function extractFigures(result: unknown): Figure[] {
  if (typeof result !== 'object' || result === null) return [];
  const { scenario, table, sections } = result as Record<string, unknown>;
  const name = typeof scenario === 'string' ? scenario : 'unknown';
  const tables: Table[] = [];
  if (isTable(table)) tables.push({ columns: table.columns, rows: table.rows });
  if (Array.isArray(sections)) {
    for (const section of sections) {
      if (!isTable(section)) continue;
      if ((section as { compare?: unknown }).compare === false) continue;
      const { heading, offeredRate } = section as { heading?: unknown; offeredRate?: unknown };
      tables.push({
        columns: section.columns,
        rows: section.rows,
        heading: typeof heading === 'string' ? heading : undefined,
        offeredRate: typeof offeredRate === 'number' ? offeredRate : undefined,
      });
    }
  }
  return tables.flatMap((t) => tableFigures(name, t));
}

/**
 * Compares current figures with the baseline's by name. A figure regresses when it is worse
 * than its baseline by more than the tolerance of its kind (relative) and by more than its
 * display resolution; it improves when better by as much; otherwise it is unchanged. A latency
 * whose two runs offered rates further apart than the ratio tolerance is set aside
 * (`elsewhere`), neither passed nor failed.
 */
export function compare(
  baseline: Figure[],
  current: Figure[],
  tolerance: Tolerance = DEFAULT_TOLERANCE,
): Comparison {
  const byName = new Map(current.map((f) => [f.name, f]));
  const result: Comparison = {
    regressions: [],
    improvements: [],
    unchanged: [],
    missing: [],
    elsewhere: [],
  };
  for (const base of baseline) {
    const now = byName.get(base.name);
    if (!now) {
      result.missing.push(base.name);
      continue;
    }
    const diff = now.value - base.value;
    const change =
      base.value === 0 ? (diff === 0 ? 0 : Math.sign(diff) * Infinity) : diff / base.value;
    const delta: Delta = {
      name: base.name,
      scenario: base.scenario,
      kind: base.kind,
      better: base.better,
      baseline: base.value,
      current: now.value,
      change,
      ...(base.offered !== undefined && now.offered !== undefined
        ? { offered: { baseline: base.offered, current: now.offered } }
        : {}),
    };
    if (
      delta.kind === 'latency' &&
      delta.offered &&
      Math.abs(delta.offered.current / delta.offered.baseline - 1) > tolerance.ratio
    ) {
      result.elsewhere.push(delta);
      continue;
    }
    // Positive when the figure got better, whichever direction better is.
    const gain = base.better === 'higher' ? change : -change;
    const limit = base.kind === 'ratio' ? tolerance.ratio : tolerance.latency;
    // Roundings of both figures may each be off by half a unit: up to one unit apart unchanged.
    const resolution = Math.max(base.resolution ?? 0, now.resolution ?? 0);
    const beyondRounding = Math.abs(diff) > resolution * (1 + 1e-9);
    if (gain < -limit && beyondRounding) result.regressions.push(delta);
    else if (gain > limit && beyondRounding) result.improvements.push(delta);
    else result.unchanged.push(delta);
  }
  return result;
}
