/**
 * The SVG line-chart writer (bench/lib/plot.ts): well-formed, escaped output; one polyline and
 * one marker per plottable point; pixel positions against the plot area on linear and log
 * scales; reference lines; the empty chart; and that the same spec gives the same bytes.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type ChartSpec, lineChart, writeChart } from '../../bench/lib/plot.ts';

/**
 * Throws unless `svg` is one well-formed XML element: balanced tags, quoted attributes, and no
 * raw `<` or `&` in text or attribute values (only the five predefined entities).
 */
function assertWellFormed(svg: string): void {
  const text = /^(?:[^<>&]|&(?:amp|lt|gt|quot|apos);)*$/;
  const tag =
    /^<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="(?:[^"<&]|&(?:amp|lt|gt|quot|apos);)*")*)\s*(\/?)>$/;
  const stack: string[] = [];
  let roots = 0;
  let at = 0;
  for (const m of svg.matchAll(/<[^>]*>/g)) {
    const between = svg.slice(at, m.index);
    assert.match(between, text, `bad text before offset ${m.index}: ${between}`);
    if (stack.length === 0) assert.equal(between.trim(), '', 'text outside the root element');
    at = m.index + m[0].length;
    const t = tag.exec(m[0]);
    assert.ok(t, `malformed tag: ${m[0]}`);
    const [, close, name, , selfClose] = t;
    if (close) {
      assert.equal(selfClose, '', `malformed tag: ${m[0]}`);
      assert.equal(stack.pop(), name, `unbalanced </${name}>`);
    } else {
      if (stack.length === 0) roots++;
      if (!selfClose) stack.push(name ?? '');
    }
  }
  assert.equal(svg.slice(at).trim(), '', 'text after the root element');
  assert.deepEqual(stack, [], 'unclosed elements');
  assert.equal(roots, 1, 'exactly one root element');
}

/** The attributes of every `<name …>` tag in `svg`, as numbers where they parse. */
function tags(svg: string, name: string): Array<Record<string, string>> {
  return [...svg.matchAll(new RegExp(`<${name}(?=[\\s/>])([^>]*)>`, 'g'))].map((m) =>
    Object.fromEntries([...(m[1] ?? '').matchAll(/([\w:-]+)="([^"]*)"/g)].map((a) => [a[1], a[2]])),
  );
}

function num(attrs: Record<string, string> | undefined, key: string): number {
  const v = attrs?.[key];
  assert.ok(v !== undefined, `missing attribute ${key}`);
  return Number(v);
}

/** The markers drawn for series (legend swatches excluded), in drawing order. */
function markers(svg: string): Array<{ cx: number; cy: number }> {
  const groups = [...svg.matchAll(/<g class="series"[^>]*>([\s\S]*?)<\/g>/g)];
  return groups.flatMap((g) =>
    tags(g[1] ?? '', 'circle').map((c) => ({ cx: num(c, 'cx'), cy: num(c, 'cy') })),
  );
}

function plotArea(svg: string): { left: number; top: number; right: number; bottom: number } {
  const [r] = tags(svg, 'rect class="plot-area"');
  const left = num(r, 'x');
  const top = num(r, 'y');
  return { left, top, right: left + num(r, 'width'), bottom: top + num(r, 'height') };
}

/** The labels of one axis' ticks, in order. */
function tickLabels(svg: string, axis: 'x' | 'y'): string[] {
  const group = new RegExp(`<g class="${axis}-ticks"[^>]*>([\\s\\S]*?)</g>`).exec(svg);
  return [...(group?.[1] ?? '').matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1] ?? '');
}

const BASE: ChartSpec = {
  title: 'p99 <latency> & "load" \'open\'',
  xLabel: 'offered load (req/s)',
  yLabel: 'latency (ms)',
  series: [
    {
      name: 'engram <fast>',
      points: [
        { x: 0, y: 0 },
        { x: 250, y: 20 },
        { x: 500, y: 35 },
        { x: 750, y: 60 },
        { x: 1000, y: 100 },
      ],
    },
    {
      name: 'ceiling',
      dashed: true,
      points: [
        { x: 0, y: 5 },
        { x: 1000, y: 8 },
      ],
    },
  ],
};

describe('SVG line chart', () => {
  it('writes a standalone, well-formed SVG document with escaped text', () => {
    const svg = lineChart(BASE);
    assert.ok(svg.startsWith('<svg'), svg.slice(0, 40));
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /font-family="system-ui, sans-serif"/);
    assert.match(svg, /<rect width="800" height="450" fill="#ffffff"\/>/);
    assertWellFormed(svg);
    const escaped = 'p99 &lt;latency&gt; &amp; &quot;load&quot; &apos;open&apos;';
    assert.ok(svg.includes(`<title>${escaped}</title>`));
    assert.match(svg, new RegExp(`<text class="title"[^>]*>${escaped}</text>`));
    assert.ok(!svg.includes('<latency>') && !svg.includes('<fast>'));
    // Legend: one entry per series, in order.
    const legend = /<g class="legend">([\s\S]*?)<\/g>/.exec(svg)?.[1] ?? '';
    const names = [...legend.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    assert.deepEqual(names, ['engram &lt;fast&gt;', 'ceiling']);
    assert.ok(svg.includes('>offered load (req/s)</text>') && svg.includes('>latency (ms)</text>'));
  });

  it('draws one polyline per series and one marker per point, each series in its own colour', () => {
    const svg = lineChart(BASE);
    const lines = tags(svg, 'polyline');
    assert.equal(lines.length, 2);
    assert.equal(markers(svg).length, 7);
    assert.notEqual(lines[0]?.stroke, lines[1]?.stroke);
    assert.equal(lines[0]?.['stroke-dasharray'], undefined);
    assert.ok(lines[1]?.['stroke-dasharray'], 'the dashed series has a dash array');
    assert.equal(lines[0]?.points?.split(' ').length, 5);
  });

  it('places points on the plot area: min at the left/bottom edge, max at the right/top', () => {
    const svg = lineChart(BASE);
    const area = plotArea(svg);
    const pts = markers(svg).slice(0, 5);
    for (let i = 1; i < pts.length; i++) {
      assert.ok((pts[i]?.cx ?? 0) > (pts[i - 1]?.cx ?? 0), 'x pixels increase with x');
      assert.ok((pts[i]?.cy ?? 0) < (pts[i - 1]?.cy ?? 0), 'y pixels decrease as y grows');
    }
    assert.deepEqual(pts[0], { cx: area.left, cy: area.bottom });
    assert.deepEqual(pts[4], { cx: area.right, cy: area.top });
    // x = 500 of 0..1000 is the middle; y = 20 of 0..100 is a fifth of the way up.
    assert.equal(pts[2]?.cx, Math.round(((area.left + area.right) / 2) * 100) / 100);
    assert.equal(pts[1]?.cy, Math.round((area.bottom - (area.bottom - area.top) / 5) * 100) / 100);
    assert.deepEqual(tickLabels(svg, 'x'), ['0', '200', '400', '600', '800', '1k']);
    assert.deepEqual(tickLabels(svg, 'y'), ['0', '20', '40', '60', '80', '100']);
  });

  it('picks nice, compactly labelled ticks', () => {
    const y = (points: Array<{ x: number; y: number }>) =>
      tickLabels(lineChart({ ...BASE, series: [{ name: 's', points }] }), 'y');
    assert.deepEqual(
      y([
        { x: 1, y: 300 },
        { x: 2, y: 2500 },
      ]),
      ['0', '500', '1k', '1.5k', '2k', '2.5k'],
    );
    assert.deepEqual(
      y([
        { x: 1, y: 0.05 },
        { x: 2, y: 0.25 },
      ]),
      ['0', '0.05', '0.1', '0.15', '0.2', '0.25'],
    );
    assert.deepEqual(
      y([
        { x: 1, y: 1000 },
        { x: 2, y: 11_500 },
      ]),
      ['0', '2k', '4k', '6k', '8k', '10k', '12k'],
    );
    // Negative data: the axis is not forced to start at 0.
    assert.deepEqual(
      y([
        { x: 1, y: -30 },
        { x: 2, y: 70 },
      ]),
      ['-40', '-20', '0', '20', '40', '60', '80'],
    );
    const x = tickLabels(
      lineChart({
        ...BASE,
        series: [
          {
            name: 's',
            points: [
              { x: 1_200_000, y: 1 },
              { x: 2_000_000, y: 2 },
            ],
          },
        ],
      }),
      'x',
    );
    assert.deepEqual(x, ['1.2M', '1.4M', '1.6M', '1.8M', '2M']);
  });

  it('skips non-positive points on a log scale and spaces decades evenly', () => {
    const svg = lineChart({
      ...BASE,
      xScale: 'log',
      yScale: 'log',
      series: [
        {
          name: 'log',
          points: [
            { x: 0, y: 5 },
            { x: -5, y: 5 },
            { x: 1, y: 1 },
            { x: 10, y: 0 },
            { x: 10, y: 10 },
            { x: 100, y: 100 },
          ],
        },
      ],
    });
    assertWellFormed(svg);
    const area = plotArea(svg);
    const pts = markers(svg);
    assert.equal(pts.length, 3);
    assert.equal(tags(svg, 'polyline')[0]?.points?.split(' ').length, 3);
    assert.deepEqual(pts[0], { cx: area.left, cy: area.bottom });
    assert.deepEqual(pts[2], { cx: area.right, cy: area.top });
    assert.equal(pts[1]?.cx, Math.round(((area.left + area.right) / 2) * 100) / 100);
    assert.deepEqual(tickLabels(svg, 'x'), ['1', '2', '5', '10', '20', '50', '100']);
  });

  it('labels only decades on a log scale spanning many of them', () => {
    const svg = lineChart({
      ...BASE,
      yScale: 'log',
      series: [
        {
          name: 's',
          points: [
            { x: 1, y: 0.5 },
            { x: 2, y: 30_000 },
          ],
        },
      ],
    });
    assert.deepEqual(tickLabels(svg, 'y'), ['0.1', '1', '10', '100', '1k', '10k', '100k']);
  });

  it('skips non-finite points and draws nothing for an empty series, which the legend lists', () => {
    const svg = lineChart({
      ...BASE,
      series: [
        {
          name: 'gappy',
          points: [
            { x: 1, y: 1 },
            { x: Number.NaN, y: 2 },
            { x: 3, y: Number.POSITIVE_INFINITY },
            { x: 4, y: 4 },
          ],
        },
        { name: 'nothing yet', points: [] },
      ],
    });
    assertWellFormed(svg);
    assert.equal(tags(svg, 'polyline').length, 1);
    assert.equal(markers(svg).length, 2);
    assert.ok(!svg.includes('NaN') && !svg.includes('Infinity'));
    assert.match(svg, /<g class="legend">[\s\S]*>nothing yet<\/text>/);
    assert.ok(!svg.includes('no data'));
  });

  it('draws horizontal and vertical reference lines, widening the axes to show them', () => {
    const svg = lineChart({
      ...BASE,
      hLines: [{ y: 200, label: 'p99 limit < 200 ms' }],
      vLines: [{ x: 500, label: 'breaking point' }],
    });
    assertWellFormed(svg);
    const area = plotArea(svg);
    const [h] = tags(svg, 'line class="h-line"');
    const [v] = tags(svg, 'line class="v-line"');
    // The data stops at y = 100; the limit at 200 becomes the top of the axis.
    assert.equal(num(h, 'y1'), area.top);
    assert.equal(num(h, 'x1'), area.left);
    assert.equal(num(h, 'x2'), area.right);
    assert.equal(num(v, 'x1'), Math.round(((area.left + area.right) / 2) * 100) / 100);
    assert.equal(num(v, 'y1'), area.top);
    assert.equal(num(v, 'y2'), area.bottom);
    assert.ok(svg.includes('>p99 limit &lt; 200 ms</text>'));
    assert.ok(svg.includes('>breaking point</text>'));
    assert.equal(tickLabels(svg, 'y').at(-1), '200');
  });

  it('says "no data" when nothing can be plotted', () => {
    for (const spec of [
      { ...BASE, series: [] },
      { ...BASE, series: [{ name: 'empty', points: [] }] },
      { ...BASE, yScale: 'log' as const, series: [{ name: 'zeros', points: [{ x: 1, y: 0 }] }] },
    ]) {
      const svg = lineChart(spec);
      assert.ok(svg.startsWith('<svg'));
      assertWellFormed(svg);
      assert.match(svg, /<text class="no-data"[^>]*>no data<\/text>/);
      assert.equal(tags(svg, 'polyline').length, 0);
      assert.equal(markers(svg).length, 0);
    }
  });

  it('is deterministic, with coordinates rounded to 2 decimals', () => {
    const spec: ChartSpec = {
      ...BASE,
      width: 640,
      height: 360,
      series: [
        {
          name: 'thirds',
          points: [1, 2, 3, 4, 5, 6, 7].map((i) => ({ x: i / 3, y: Math.sqrt(i) * 7.77 })),
        },
      ],
    };
    const a = lineChart(spec);
    assert.equal(lineChart(structuredClone(spec)), a);
    assert.match(a, /viewBox="0 0 640 360"/);
    for (const m of a.matchAll(/\b(?:x|y|x1|x2|y1|y2|cx|cy|points)="([^"]*)"/g)) {
      for (const n of (m[1] ?? '').split(/[ ,]/)) {
        assert.match(n, /^-?\d+(\.\d{1,2})?$/, `coordinate ${n} in ${m[0]}`);
      }
    }
  });

  it('writeChart writes the SVG, creating the directory, and returns the path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'plot-test-'));
    try {
      const path = join(dir, 'nested', 'deeper', 'chart.svg');
      assert.equal(writeChart(path, BASE), path);
      assert.equal(readFileSync(path, 'utf8'), lineChart(BASE));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
