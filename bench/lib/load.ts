import autocannon from 'autocannon';

/** One load shape, run the same way against Engram and against the ceiling. */
export interface LoadSpec {
  /** Path of every request, e.g. `/v1/memories`. */
  path: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  /** Body of the n-th request (distinct bodies: no write is a repeat). */
  body?: (n: number) => string;
  connections: number;
  /** Memories written (or read) per 2xx response, to report memories/s. */
  itemsPerRequest: number;
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
        setupRequest: (req) => {
          if (spec.body) req.body = spec.body(sequence++);
          return req;
        },
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
