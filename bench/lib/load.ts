import type { IncomingHttpHeaders } from 'node:http';
import autocannon from 'autocannon';

/** One load shape, run the same way against Engram and against the ceiling. */
export interface LoadSpec {
  /** Path of every request, e.g. `/v1/memories`. */
  path: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  /** Path of the n-th request, when requests go to several paths (else `path`). */
  pathOf?: (n: number) => string;
  /** Body of the n-th request (distinct bodies: no write is a repeat). */
  body?: (n: number) => string;
  connections: number;
  /** Memories written (or read) per 2xx response, to report memories/s. */
  itemsPerRequest: number;
  /**
   * Sees every response (status, a header by lower-case name, body), e.g. to count a header.
   * It costs the generator a little per response and header: give it to every target alike.
   */
  onResponse?: (status: number, header: (name: string) => string | undefined, body: string) => void;
}

/** The figures of one measurement. */
export interface LoadSample {
  reqPerSec: number;
  itemsPerSec: number;
  /** Latency percentiles in milliseconds. */
  p50: number;
  p97_5: number;
  p99: number;
  /** Connection errors, including timeouts. */
  errors: number;
  timeouts: number;
  non2xx: number;
  /** Responses per status code. */
  statusCodes: Record<string, number>;
  total: number;
  durationSec: number;
}

/** Numbers the requests of the whole process, so no two bodies of a run are alike. */
let sequence = 0;

/** A header of autocannon's header object by lower-case name (servers may send any case). */
export function headerOf(
  headers: IncomingHttpHeaders | undefined,
  name: string,
): string | undefined {
  if (!headers) return undefined;
  let value = headers[name];
  if (value === undefined) {
    for (const key in headers) {
      if (key.toLowerCase() === name) {
        value = headers[key];
        break;
      }
    }
  }
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Adapts a response callback to autocannon's `onResponse` (headers looked up on demand). */
export function responseHook(
  fn: (status: number, header: (name: string) => string | undefined, body: string) => void,
): (status: number, body: string, context: object, headers?: IncomingHttpHeaders) => void {
  return (status, body, _context, headers) => {
    fn(status, (name) => headerOf(headers, name), body);
  };
}

/** Runs `spec` against `base` for `durationSec` with autocannon (keep-alive, no pipelining). */
export async function load(base: string, spec: LoadSpec, durationSec: number): Promise<LoadSample> {
  const result = await autocannon({
    url: `${base}${spec.path}`,
    connections: spec.connections,
    pipelining: 1,
    duration: durationSec,
    requests: [
      {
        method: spec.method,
        path: spec.path,
        headers: spec.headers,
        // Only when bodies vary: a static request is built once, not per request.
        ...(spec.body || spec.pathOf
          ? {
              setupRequest: (req: autocannon.Request) => {
                const n = sequence++;
                if (spec.body) req.body = spec.body(n);
                if (spec.pathOf) req.path = spec.pathOf(n);
                return req;
              },
            }
          : {}),
        ...(spec.onResponse ? { onResponse: responseHook(spec.onResponse) } : {}),
      },
    ],
  });
  const statusCodes: Record<string, number> = {};
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) {
    statusCodes[code] = stat.count ?? 0;
  }
  return {
    reqPerSec: result.requests.average,
    itemsPerSec: (result['2xx'] * spec.itemsPerRequest) / result.duration,
    p50: result.latency.p50,
    p97_5: result.latency.p97_5,
    p99: result.latency.p99,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    statusCodes,
    total: result.requests.total,
    durationSec: result.duration,
  };
}

/** Median of numbers (mean of the middle two for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  if (sorted.length % 2 === 1) return sorted[mid] as number;
  return ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Medians of several samples, metric by metric; error counts are summed over all samples. */
export interface LoadSummary {
  runs: number;
  reqPerSec: number;
  itemsPerSec: number;
  p50: number;
  p97_5: number;
  p99: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  samples: LoadSample[];
}

/** Reduces samples to medians (and error totals). */
export function summarize(samples: LoadSample[]): LoadSummary {
  const of = (pick: (s: LoadSample) => number) => median(samples.map(pick));
  const sum = (pick: (s: LoadSample) => number) => samples.reduce((t, s) => t + pick(s), 0);
  return {
    runs: samples.length,
    reqPerSec: of((s) => s.reqPerSec),
    itemsPerSec: of((s) => s.itemsPerSec),
    p50: of((s) => s.p50),
    p97_5: of((s) => s.p97_5),
    p99: of((s) => s.p99),
    errors: sum((s) => s.errors),
    timeouts: sum((s) => s.timeouts),
    non2xx: sum((s) => s.non2xx),
    samples,
  };
}
