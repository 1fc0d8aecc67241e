/**
 * A small dependency-free SVG line-chart writer for benchmark results: nice axis ticks (linear or
 * log10), one polyline with markers per series, a legend, and horizontal or vertical reference
 * lines. The output is a standalone SVG document that a browser opens as a file.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** One line of the chart; points are joined in the order given (not sorted by x). */
export interface Series {
  name: string;
  points: Array<{ x: number; y: number }>;
  /** dashed line, e.g. for a ceiling */
  dashed?: boolean;
}

/** What to draw: the series, axis titles and scales, reference lines and size in pixels. */
export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** 'log' uses log10 ticks (1, 2, 5, 10, 20, 50…); default 'linear' */
  xScale?: 'linear' | 'log';
  yScale?: 'linear' | 'log';
  /** Horizontal reference lines, e.g. { y: 100, label: 'p99 limit 100 ms' } */
  hLines?: Array<{ y: number; label: string }>;
  /** Vertical reference lines, e.g. { x: 5230, label: 'breaking point' } */
  vLines?: Array<{ x: number; label: string }>;
  /** @default 800 */
  width?: number;
  /** @default 450 */
  height?: number;
}

type Scale = 'linear' | 'log';

/** An axis' domain (the first and last tick) and its tick values. */
interface Axis {
  scale: Scale;
  lo: number;
  hi: number;
  ticks: number[];
}

/**
 * Okabe–Ito, reordered so that the first colours differ most on white; yellow comes last as it
 * is hard to see on white.
 */
const PALETTE = [
  '#0072B2',
  '#D55E00',
  '#009E73',
  '#CC79A7',
  '#E69F00',
  '#56B4E9',
  '#000000',
  '#F0E442',
];

const MAX_TICKS = 8;
const FONT_SIZE = 12;
/** A rough average glyph width of a sans-serif font, in ems: enough to reserve margins. */
const CHAR_EM = 0.6;
const LEGEND_ROW = 18;

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

/** A pixel coordinate, rounded to 2 decimals so that the output is stable and small. */
function px(n: number): string {
  const v = Math.round(n * 100) / 100;
  return Object.is(v, -0) ? '0' : String(v);
}

/** Drops the binary noise of tick arithmetic (3 × 0.1 = 0.30000000000000004). */
function clean(n: number): number {
  return Number(n.toPrecision(12));
}

function textWidth(text: string, size = FONT_SIZE): number {
  return text.length * size * CHAR_EM;
}

/** A tick label: 1000 → 1k, 2500 → 2.5k, 12000 → 12k, 1500000 → 1.5M, 0.25 → 0.25. */
function formatTick(n: number): string {
  const abs = Math.abs(n);
  for (const [size, suffix] of [
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ] as const) {
    if (abs >= size) return `${Number((n / size).toPrecision(6))}${suffix}`;
  }
  return String(Number(n.toPrecision(6)));
}

function plottable(v: number, scale: Scale): boolean {
  return Number.isFinite(v) && (scale === 'linear' || v > 0);
}

/** Ticks 1/2/5 × 10^k apart: the smallest such step that needs at most MAX_TICKS ticks. */
function linearAxis(min: number, max: number, fromZero: boolean): Axis {
  let lo = fromZero && min > 0 ? 0 : min;
  let hi = max;
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) / 2;
    lo -= pad;
    hi += pad;
  }
  const range = hi - lo;
  if (!Number.isFinite(range)) return { scale: 'linear', lo, hi, ticks: [lo, hi] };
  for (let exp = Math.floor(Math.log10(range)) - 2; ; exp++) {
    for (const m of [1, 2, 5]) {
      const step = m * 10 ** exp;
      // The epsilon keeps a bound that is already a multiple of the step from gaining a tick.
      const first = Math.floor(lo / step + 1e-9);
      const last = Math.ceil(hi / step - 1e-9);
      if (last - first + 1 > MAX_TICKS) continue;
      const ticks: number[] = [];
      for (let i = first; i <= last; i++) ticks.push(clean(i * step));
      return { scale: 'linear', lo: ticks[0] ?? lo, hi: ticks.at(-1) ?? hi, ticks };
    }
  }
}

/**
 * Over up to 3 decades the domain snaps to the 1-2-5 values around the data, each labelled;
 * over more, ticks are at decades only (every n-th decade past 8 of them).
 */
function logAxis(min: number, max: number): Axis {
  let lo = min;
  let hi = max;
  if (lo === hi) {
    lo /= 2;
    hi *= 2;
  }
  const e0 = Math.floor(clean(Math.log10(lo)));
  const e1 = Math.ceil(clean(Math.log10(hi)));
  const decades = Math.max(1, e1 - e0);
  if (decades <= 3) {
    const candidates: number[] = [];
    for (let e = e0; e <= e1; e++) {
      for (const m of [1, 2, 5]) candidates.push(clean(m * 10 ** e));
    }
    const start = candidates.findLast((c) => c <= lo) ?? candidates[0] ?? lo;
    const end = candidates.find((c) => c >= hi) ?? candidates.at(-1) ?? hi;
    const ticks = candidates.filter((c) => c >= start && c <= end);
    return { scale: 'log', lo: start, hi: end, ticks };
  }
  const stride = Math.ceil(decades / MAX_TICKS);
  const ticks: number[] = [];
  for (let e = e0; e <= e0 + Math.ceil(decades / stride) * stride; e += stride) {
    ticks.push(clean(10 ** e));
  }
  return { scale: 'log', lo: ticks[0] ?? lo, hi: ticks.at(-1) ?? hi, ticks };
}

function makeAxis(values: number[], scale: Scale, fromZero: boolean): Axis {
  if (values.length === 0) return scale === 'log' ? logAxis(1, 10) : linearAxis(0, 1, false);
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return scale === 'log' ? logAxis(min, max) : linearAxis(min, max, fromZero);
}

/** Where `v` falls between the pixels `p0` (the axis' lo) and `p1` (its hi). */
function project(axis: Axis, v: number, p0: number, p1: number): number {
  const t =
    axis.scale === 'log'
      ? (Math.log10(v) - Math.log10(axis.lo)) / (Math.log10(axis.hi) - Math.log10(axis.lo))
      : (v - axis.lo) / (axis.hi - axis.lo);
  return p0 + t * (p1 - p0);
}

/** Text with a white halo, so that it stays legible over grid lines and series. */
function haloText(x: number, y: number, anchor: string, text: string, extra = ''): string {
  return `<text x="${px(x)}" y="${px(y)}" text-anchor="${anchor}" paint-order="stroke" stroke="#fff" stroke-width="3"${extra}>${escapeXml(text)}</text>`;
}

/** Returns a complete standalone SVG document (string). */
export function lineChart(spec: ChartSpec): string {
  const width = spec.width ?? 800;
  const height = spec.height ?? 450;
  const xScale: Scale = spec.xScale ?? 'linear';
  const yScale: Scale = spec.yScale ?? 'linear';
  const hLines = (spec.hLines ?? []).filter((l) => plottable(l.y, yScale));
  const vLines = (spec.vLines ?? []).filter((l) => plottable(l.x, xScale));

  const series = spec.series.map((s, i) => ({
    name: s.name,
    dashed: s.dashed === true,
    colour: PALETTE[i % PALETTE.length] ?? '#000000',
    points: s.points.filter((p) => plottable(p.x, xScale) && plottable(p.y, yScale)),
  }));
  const pointCount = series.reduce((n, s) => n + s.points.length, 0);

  // Reference lines widen the domain so that a limit the data never reaches is still drawn.
  const xAxis = makeAxis(
    [...series.flatMap((s) => s.points.map((p) => p.x)), ...vLines.map((l) => l.x)],
    xScale,
    false,
  );
  const yAxis = makeAxis(
    [...series.flatMap((s) => s.points.map((p) => p.y)), ...hLines.map((l) => l.y)],
    yScale,
    true,
  );
  const xTicks = xAxis.ticks.map((v) => ({ v, label: formatTick(v) }));
  const yTicks = yAxis.ticks.map((v) => ({ v, label: formatTick(v) }));

  // The legend sits right of the plot, so it never hides data; long names are cut to fit.
  const legendMax = Math.round(width * 0.3);
  const legendNames = series.map((s) => {
    const room = Math.floor((legendMax - 50) / (FONT_SIZE * CHAR_EM));
    return s.name.length > room ? `${s.name.slice(0, Math.max(1, room - 1))}…` : s.name;
  });
  const legendWidth =
    series.length === 0
      ? 0
      : Math.round(Math.min(legendMax, 50 + Math.max(...legendNames.map((n) => textWidth(n)))));

  const yLabelRoom = Math.max(...yTicks.map((t) => textWidth(t.label)));
  const left = Math.round(24 + 10 + yLabelRoom + 8);
  const top = 44;
  const right = Math.max(left + 10, width - (legendWidth > 0 ? legendWidth + 32 : 24));
  const bottom = Math.max(top + 10, height - 52);
  const plotW = right - left;
  const plotH = bottom - top;
  const toX = (v: number) => project(xAxis, v, left, right);
  const toY = (v: number) => project(yAxis, v, bottom, top);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="${FONT_SIZE}" role="img">`,
    `<title>${escapeXml(spec.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text class="title" x="${px(width / 2)}" y="26" text-anchor="middle" font-size="16" font-weight="600" fill="#111">${escapeXml(spec.title)}</text>`,
    `<rect class="plot-area" x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none"/>`,
  );

  out.push('<g class="grid" stroke="#e6e6e6" stroke-width="1">');
  for (const t of xTicks) {
    const x = px(toX(t.v));
    out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${bottom}"/>`);
  }
  for (const t of yTicks) {
    const y = px(toY(t.v));
    out.push(`<line x1="${left}" y1="${y}" x2="${right}" y2="${y}"/>`);
  }
  out.push('</g>');

  out.push('<g class="x-ticks" text-anchor="middle" fill="#333">');
  for (const t of xTicks) {
    out.push(`<text x="${px(toX(t.v))}" y="${bottom + 18}">${escapeXml(t.label)}</text>`);
  }
  out.push('</g>', '<g class="y-ticks" text-anchor="end" fill="#333">');
  for (const t of yTicks) {
    out.push(`<text x="${left - 8}" y="${px(toY(t.v) + 4)}">${escapeXml(t.label)}</text>`);
  }
  out.push('</g>');

  out.push(
    `<g class="axes" stroke="#333" stroke-width="1"><line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}"/><line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}"/></g>`,
    `<text class="x-label" x="${px(left + plotW / 2)}" y="${height - 12}" text-anchor="middle" fill="#111">${escapeXml(spec.xLabel)}</text>`,
    `<text class="y-label" x="18" y="${px(top + plotH / 2)}" text-anchor="middle" fill="#111" transform="rotate(-90 18 ${px(top + plotH / 2)})">${escapeXml(spec.yLabel)}</text>`,
  );

  if (hLines.length + vLines.length > 0) {
    out.push('<g class="ref-lines" fill="#333">');
    // Limit labels go at the left end: load-latency curves are low there and cross limits late.
    for (const l of hLines) {
      const y = toY(l.y);
      out.push(
        `<line class="h-line" x1="${left}" y1="${px(y)}" x2="${right}" y2="${px(y)}" stroke="#555" stroke-width="1" stroke-dasharray="3 3"/>`,
        haloText(left + 6, y - top < 16 ? y + 14 : y - 5, 'start', l.label),
      );
    }
    for (const l of vLines) {
      const x = toX(l.x);
      const nearRight = x > left + plotW * 0.7;
      out.push(
        `<line class="v-line" x1="${px(x)}" y1="${top}" x2="${px(x)}" y2="${bottom}" stroke="#555" stroke-width="1" stroke-dasharray="3 3"/>`,
        haloText(nearRight ? x - 4 : x + 4, top + 14, nearRight ? 'end' : 'start', l.label),
      );
    }
    out.push('</g>');
  }

  for (const s of series) {
    if (s.points.length === 0) continue;
    const coords = s.points.map((p) => `${px(toX(p.x))},${px(toY(p.y))}`);
    out.push(`<g class="series" data-name="${escapeXml(s.name)}" fill="${s.colour}">`);
    // One point makes no line, only its marker.
    if (coords.length > 1) {
      const dash = s.dashed ? ' stroke-dasharray="7 4"' : '';
      out.push(
        `<polyline points="${coords.join(' ')}" fill="none" stroke="${s.colour}" stroke-width="2" stroke-linejoin="round"${dash}/>`,
      );
    }
    for (const c of coords) {
      const [cx, cy] = c.split(',');
      out.push(`<circle cx="${cx}" cy="${cy}" r="3"/>`);
    }
    out.push('</g>');
  }

  if (series.length > 0) {
    const lx = right + 16;
    const boxH = 8 + series.length * LEGEND_ROW;
    out.push(
      '<g class="legend">',
      `<rect x="${lx}" y="${top}" width="${legendWidth}" height="${boxH}" fill="#fff" stroke="#ccc"/>`,
    );
    series.forEach((s, i) => {
      const cy = top + 4 + LEGEND_ROW * i + LEGEND_ROW / 2;
      const dash = s.dashed ? ' stroke-dasharray="7 4"' : '';
      out.push(
        `<line x1="${lx + 8}" y1="${cy}" x2="${lx + 32}" y2="${cy}" stroke="${s.colour}" stroke-width="2"${dash}/>`,
        `<circle cx="${lx + 20}" cy="${cy}" r="3" fill="${s.colour}"/>`,
        `<text x="${lx + 40}" y="${cy + 4}" fill="#111">${escapeXml(legendNames[i] ?? s.name)}</text>`,
      );
    });
    out.push('</g>');
  }

  if (pointCount === 0) {
    out.push(
      `<text class="no-data" x="${px(left + plotW / 2)}" y="${px(top + plotH / 2)}" text-anchor="middle" font-size="16" fill="#888">no data</text>`,
    );
  }

  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** Writes lineChart(spec) to `path` (creating the directory); returns path. */
export function writeChart(path: string, spec: ChartSpec): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, lineChart(spec));
  return path;
}
