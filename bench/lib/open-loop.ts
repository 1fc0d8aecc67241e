/**
 * An open-loop HTTP load generator: request n is due at `start + n / rate` whatever became of
 * the earlier ones, and its latency runs from its due time (not from when it was actually sent)
 * to the end of its response. A closed-loop tool (autocannon) sends the next request only after
 * the previous answer, so a server stall stops it sending and the stall hides from its
 * percentiles (coordinated omission); here every request due during a stall waits, and counts.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';

/** One open-loop run: a fixed rate for a fixed time, the n-th request made by `request(n)`. */
export interface OpenLoopSpec {
  /** e.g. `http://127.0.0.1:8080`. */
  base: string;
  /** Requests per second, on a fixed schedule. */
  rate: number;
  durationSec: number;
  /** The n-th request (n from 0). */
  request: (n: number) => {
    method: string;
    path: string;
    headers?: Record<string, string>;
    body?: string;
  };
  /** Most requests in flight (sockets); beyond it a request waits, and its wait counts in its latency. */
  maxInFlight?: number;
  /** Per request, from its send (default 10_000): counted as an error and as a timeout. */
  timeoutMs?: number;
}

/** What an open-loop run saw: counts, codes and latencies measured from each due time. */
export interface OpenLoopResult {
  /** Requests the schedule asked for: `floor(rate × durationSec)`. */
  offered: number;
  sent: number;
  /** Responses received in full, whatever their status. */
  completed: number;
  /** Requests without a full response, timeouts included. */
  errors: number;
  timeouts: number;
  /** Completed responses per status code. */
  statusCodes: Record<string, number>;
  /** Completed responses per second of `durationSec`. */
  achievedRate: number;
  /** Percentiles of completed requests, in ms from each one's due time to its response's end. */
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number };
  /** Wall time from the start of the schedule to the last request settled. */
  durationSec: number;
}

/** Nearest-rank percentile of an ascending array (0 when it is empty). */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] ?? 0;
}

export async function openLoop(spec: OpenLoopSpec): Promise<OpenLoopResult> {
  if (!(spec.rate > 0) || !(spec.durationSec > 0)) {
    throw new Error('openLoop: rate and durationSec must be positive');
  }
  const maxInFlight = spec.maxInFlight ?? 256;
  const timeoutMs = spec.timeoutMs ?? 10_000;
  const offered = Math.floor(spec.rate * spec.durationSec);
  const intervalMs = 1000 / spec.rate;
  const base = new URL(spec.base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: maxInFlight });

  const latencies = new Float64Array(offered);
  let completed = 0;
  let sent = 0;
  let errors = 0;
  let timeouts = 0;
  const statusCodes: Record<string, number> = {};
  /** Requests in flight, each with its timeout timer. */
  const pending = new Map<http.ClientRequest, NodeJS.Timeout>();
  let onIdle: (() => void) | undefined;

  /** Takes `req` out of flight, once: false when it had already settled. */
  const settle = (req: http.ClientRequest) => {
    const timer = pending.get(req);
    if (timer === undefined) return false;
    clearTimeout(timer);
    pending.delete(req);
    if (pending.size === 0 && onIdle) onIdle();
    return true;
  };

  const fire = (n: number, dueMs: number) => {
    sent++;
    const r = spec.request(n);
    const headers: Record<string, string | number> = { ...r.headers };
    if (r.body !== undefined) headers['content-length'] = Buffer.byteLength(r.body);
    let req: http.ClientRequest;
    try {
      req = http.request(
        {
          protocol: base.protocol,
          hostname: base.hostname,
          port: base.port,
          method: r.method,
          path: r.path,
          headers,
          agent,
        },
        (res) => {
          res.on('data', () => {});
          res.on('end', () => {
            if (!settle(req)) return;
            latencies[completed++] = performance.now() - dueMs;
            const code = String(res.statusCode ?? 0);
            statusCodes[code] = (statusCodes[code] ?? 0) + 1;
          });
          res.on('error', () => {});
        },
      );
    } catch {
      errors++;
      return;
    }
    pending.set(
      req,
      setTimeout(() => {
        if (!settle(req)) return;
        errors++;
        timeouts++;
        req.destroy();
      }, timeoutMs),
    );
    req.on('error', () => {
      if (!settle(req)) return;
      errors++;
    });
    req.end(r.body);
  };

  const start = performance.now();
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      // A late wake sends every request already due, as a burst: that is the open loop.
      while (next < offered) {
        const due = start + next * intervalMs;
        if (due > now) break;
        fire(next, due);
        next++;
      }
      if (next >= offered) resolve();
      else setTimeout(tick, Math.max(0, Math.min(1, start + next * intervalMs - now)));
    };
    tick();
  });

  // The schedule is over: wait for what is in flight, at most `timeoutMs`.
  if (pending.size > 0) {
    await new Promise<void>((resolve) => {
      const deadline = setTimeout(resolve, timeoutMs);
      onIdle = () => {
        clearTimeout(deadline);
        resolve();
      };
    });
  }
  for (const req of [...pending.keys()]) {
    settle(req);
    errors++;
    timeouts++;
    req.destroy();
  }
  const end = performance.now();
  agent.destroy();

  const sorted = latencies.subarray(0, completed).sort();
  const durationSec = (end - start) / 1000;
  return {
    offered,
    sent,
    completed,
    errors,
    timeouts,
    statusCodes,
    achievedRate: durationSec > 0 ? completed / durationSec : 0,
    latencyMs: {
      p50: percentile(sorted, 0.5),
      p90: percentile(sorted, 0.9),
      p99: percentile(sorted, 0.99),
      p999: percentile(sorted, 0.999),
      max: completed > 0 ? (sorted[completed - 1] ?? 0) : 0,
    },
    durationSec,
  };
}
