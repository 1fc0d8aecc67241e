/**
 * Virtual users: the realistic mix. Each virtual user is a conversation with an assistant: it
 * starts a session for a user (drawn by activity), then, with think times between requests,
 * searches, appends messages and reads memories; now and then it goes idle and comes back to
 * the same session, or ends the session and leaves (its next request starts another user's).
 *
 * Open loop: a user's requests are due on its own schedule (think times drawn so that all the
 * users together offer `rate` requests/s). A user whose answer comes after its next due time
 * sends at once, and every latency runs from the request's due time, so a server stall counts
 * in full (no coordinated omission). With `rate: 0` the loop is closed: no think time, each
 * user sends as soon as its previous answer is in (the saturation measurement).
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { activity, type Dataset, type TextSource } from './dataset.ts';
import { percentile } from './open-loop.ts';
import { prng } from './zipf.ts';

/** The operations of the mix. */
export const OPS = ['start', 'search', 'append', 'read', 'end'] as const;
export type Op = (typeof OPS)[number];

/** Reads and searches (the read targets) and writes. */
export const READ_OPS: readonly Op[] = ['search', 'read'];
export const WRITE_OPS: readonly Op[] = ['start', 'append', 'end'];

/** What a user in a session does next, with its share of actions. */
export const ACTION_SHARES = {
  search: 0.4,
  append: 0.35,
  read: 0.15,
  idle: 0.05,
  end: 0.05,
} as const;

type Action = keyof typeof ACTION_SHARES;

/** Upper bounds of the actions' shares of [0, 1), in whole millionths (no float drift). */
const ACTION_BOUNDS = (() => {
  let acc = 0;
  return (Object.entries(ACTION_SHARES) as Array<[Action, number]>).map(([action, share]) => {
    acc += Math.round(share * 1e6);
    return [action, acc] as const;
  });
})();

/** The action whose share of [0, 1) holds `r`. */
export function actionOf(r: number): Action {
  const at = r * 1e6;
  for (const [action, bound] of ACTION_BOUNDS) if (at < bound) return action;
  return 'end';
}

/** One mix run. */
export interface MixSpec {
  /** e.g. `http://127.0.0.1:8080` */
  base: string;
  /** API key (sent as a bearer token). */
  key: string;
  dataset: Dataset;
  text: TextSource;
  /** Concurrent virtual users. */
  vus: number;
  /** Requests per second all users offer together; 0 closes the loop (no think time). */
  rate: number;
  durationSec: number;
  /**
   * Seconds run first and not recorded: the users are mid-session when the measured window
   * opens (each session lasts ≈ 20 actions), and caches hold what they hold in a steady state.
   * @default 0
   */
  warmupSec?: number;
  /** Mean idle pause (s) of a user that goes idle, open loop only. @default 2 */
  idleSec?: number;
  /** Sockets of the client pool (an application's connection pool). @default 64 */
  sockets?: number;
  /** Per request, from its send. @default 10_000 */
  timeoutMs?: number;
  seed?: number;
  /** Called every `windowSec` seconds with the window's figures (soak). */
  onWindow?: (window: WindowFigures) => void;
  /** @default 10 */
  windowSec?: number;
}

/** Latency percentiles in ms, from due time to the answer's end. */
export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Figures of one window of a run. */
export interface WindowFigures {
  /** Seconds since the run's start, at the window's end. */
  atSec: number;
  completed: number;
  errors: number;
  non2xx: number;
  rate: number;
  all: Percentiles;
}

/** What a mix run saw. */
export interface MixResult {
  vus: number;
  /** Requests due before the end (open loop), or sent (closed loop). */
  offered: number;
  offeredRate: number;
  sent: number;
  completed: number;
  /** Requests without an answer (connection errors, timeouts). */
  errors: number;
  timeouts: number;
  /** Answers outside 2xx. */
  non2xx: number;
  statusCodes: Record<string, number>;
  /** Completed per second of the schedule. */
  achievedRate: number;
  /** Mean answer size in bytes. */
  meanBytes: number;
  all: Percentiles;
  reads: Percentiles;
  writes: Percentiles;
  ops: Record<Op, Percentiles & { errors: number; non2xx: number }>;
  /**
   * Sessions started, ended and idle pauses; `expired`: appends or ends answered 409 (the
   * session's idle timeout had ended it; searches and reads are not session activity), after
   * which the user starts a new session, as a client does. Those 409s are not in `non2xx`.
   */
  sessions: { started: number; ended: number; idles: number; expired: number };
  /**
   * Where searches and session starts were answered from, by the `desc` of their Server-Timing
   * (`search:hit`, `search:built`, `start:index`, `start:store`…).
   */
  sources: Record<string, number>;
  /**
   * Per op, the time the server itself reports (`app;dur` of Server-Timing: from the request's
   * arrival in Fastify to its serialized answer). The latency less this is time spent outside
   * the handler: queued in the client's pool, on the wire, waiting for the event loop to read
   * the request, and in the generator itself. Empty for servers without the header.
   */
  server: Record<Op, Percentiles>;
  durationSec: number;
}

/** Latencies of one op, growable. */
class Samples {
  values = new Float64Array(1024);
  count = 0;
  errors = 0;
  non2xx = 0;

  add(ms: number): void {
    if (this.count === this.values.length) {
      const next = new Float64Array(this.values.length * 2);
      next.set(this.values);
      this.values = next;
    }
    this.values[this.count++] = ms;
  }
}

function percentilesOf(values: Float64Array): Percentiles {
  const sorted = Float64Array.from(values).sort();
  return {
    count: sorted.length,
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    p999: percentile(sorted, 0.999),
    max: sorted.length > 0 ? (sorted[sorted.length - 1] as number) : 0,
  };
}

function merged(samples: Samples[]): Float64Array {
  const out = new Float64Array(samples.reduce((n, s) => n + s.count, 0));
  let at = 0;
  for (const s of samples) {
    out.set(s.values.subarray(0, s.count), at);
    at += s.count;
  }
  return out;
}

/** An exponential draw of mean `mean`. */
function exponential(random: () => number, mean: number): number {
  return -Math.log(1 - random()) * mean;
}

/** The session id and memory ids of a session start's answer (Engram's, or a ceiling's). */
function startAnswer(body: string): { sessionId: string; memoryIds: string[] } {
  try {
    const parsed = JSON.parse(body) as {
      id?: string;
      session?: { id?: string };
      preload?: { items?: Array<{ memory?: { id?: string } }> };
    };
    const memoryIds = (parsed.preload?.items ?? []).flatMap((i) =>
      typeof i.memory?.id === 'string' ? [i.memory.id] : [],
    );
    return { sessionId: parsed.session?.id ?? parsed.id ?? 'unknown', memoryIds };
  } catch {
    return { sessionId: 'unknown', memoryIds: [] };
  }
}

/**
 * Runs the realistic mix against `spec.base` and returns what it saw. Requests due after
 * `durationSec` are not sent; requests in flight then are waited for (at most `timeoutMs`).
 */
export async function runMix(spec: MixSpec): Promise<MixResult> {
  const open = spec.rate > 0;
  const idleMeanMs = (spec.idleSec ?? 2) * 1000;
  const timeoutMs = spec.timeoutMs ?? 10_000;
  // A user's mean time per action is vus / rate; idle pauses take their share of it.
  const perActionMs = open ? (spec.vus / spec.rate) * 1000 : 0;
  // Per loop a user sends (1 − idle share) requests and spends idle × idleMs + (1 − idle) ×
  // thinkMs; idle pauses get at most half of the time, the think times the rest.
  const busy = 1 - ACTION_SHARES.idle;
  const idleMs = Math.min(idleMeanMs, (0.5 * perActionMs * busy) / ACTION_SHARES.idle);
  const thinkMs = perActionMs - (ACTION_SHARES.idle / busy) * idleMs;
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.sockets ?? 64 });
  const base = new URL(spec.base);
  const auth = `Bearer ${spec.key}`;

  const samples = Object.fromEntries(OPS.map((op) => [op, new Samples()])) as Record<Op, Samples>;
  const serverSamples = Object.fromEntries(OPS.map((op) => [op, new Samples()])) as Record<
    Op,
    Samples
  >;
  const statusCodes: Record<string, number> = {};
  let sent = 0;
  let offered = 0;
  let timeouts = 0;
  let bytes = 0;
  let completed = 0;
  let inFlight = 0;
  let stopped = false;
  const sessions = { started: 0, ended: 0, idles: 0, expired: 0 };
  const sources: Record<string, number> = {};
  const windowSec = spec.windowSec ?? 10;
  let windowSamples = new Samples();
  let windowErrors = 0;
  let windowNon2xx = 0;

  const send = (
    op: Op,
    method: string,
    path: string,
    body: object | undefined,
    dueMs: number,
  ): Promise<{ status: number; text: string } | null> => {
    // Warm-up requests are sent like the others and not recorded.
    const recorded = dueMs >= measureFrom;
    if (recorded) sent++;
    inFlight++;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const s = recorded ? samples[op] : new Samples();
    return new Promise((resolve) => {
      let settled = false;
      const fail = (timedOut: boolean) => {
        if (settled) return;
        settled = true;
        inFlight--;
        clearTimeout(timer);
        s.errors++;
        if (recorded) {
          windowErrors++;
          if (timedOut) timeouts++;
        }
        resolve(null);
      };
      const req = http.request(
        {
          hostname: base.hostname,
          port: base.port,
          method,
          path,
          agent,
          headers: {
            authorization: auth,
            ...(payload === undefined
              ? {}
              : {
                  'content-type': 'application/json',
                  'content-length': Buffer.byteLength(payload),
                }),
          },
        },
        (res) => {
          // Only a session start's answer is read (its session and preloaded ids); the others
          // are counted, not decoded: the generator shares the cores with the server, and
          // decoding every answer was garbage its collector paused for.
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (op === 'start') chunks.push(c);
          });
          res.on('error', () => fail(false));
          res.on('end', () => {
            if (settled) return;
            settled = true;
            inFlight--;
            clearTimeout(timer);
            const ms = performance.now() - dueMs;
            const status = res.statusCode ?? 0;
            const text = op === 'start' ? Buffer.concat(chunks).toString('utf8') : '';
            if (recorded) {
              bytes += size;
              completed++;
              s.add(ms);
              windowSamples.add(ms);
              statusCodes[status] = (statusCodes[status] ?? 0) + 1;
              if (status === 409 && (op === 'append' || op === 'end')) {
                sessions.expired++;
              } else if (status < 200 || status > 299) {
                s.non2xx++;
                windowNon2xx++;
              }
              const timing = res.headers['server-timing'];
              if (typeof timing === 'string') {
                const desc = /desc="([^"]+)"/.exec(timing)?.[1];
                if (desc !== undefined)
                  sources[`${op}:${desc}`] = (sources[`${op}:${desc}`] ?? 0) + 1;
                const app = /\bapp;dur=([\d.]+)/.exec(timing)?.[1];
                if (app !== undefined) serverSamples[op].add(Number(app));
              }
            }
            resolve({ status, text });
          });
        },
      );
      const timer = setTimeout(() => {
        fail(true);
        req.destroy();
      }, timeoutMs);
      req.on('error', () => fail(false));
      req.end(payload);
    });
  };

  const start = performance.now();
  const measureFrom = start + (spec.warmupSec ?? 0) * 1000;
  const endMs = measureFrom + spec.durationSec * 1000;
  let windowStart = measureFrom;
  // Windows start with the measured part (after the warm-up).
  let windowTimer: NodeJS.Timeout | undefined;
  const windowKick = spec.onWindow
    ? setTimeout(() => {
        windowStart = performance.now();
        windowSamples = new Samples();
        windowTimer = setInterval(() => {
          const now = performance.now();
          const w = windowSamples;
          windowSamples = new Samples();
          spec.onWindow?.({
            atSec: (now - measureFrom) / 1000,
            completed: w.count,
            errors: windowErrors,
            non2xx: windowNon2xx,
            rate: w.count / ((now - windowStart) / 1000),
            all: percentilesOf(w.values.subarray(0, w.count)),
          });
          windowErrors = 0;
          windowNon2xx = 0;
          windowStart = now;
        }, windowSec * 1000);
      }, measureFrom - performance.now())
    : undefined;

  // Sessions still open when their users stop (ended after the run, unrecorded).
  const leftOpen: string[] = [];
  const user = async (v: number): Promise<void> => {
    const random = prng((spec.seed ?? 1) * 100_003 + v);
    const drawUser = activity(spec.dataset, random);
    let session: { id: string; userId: string; memoryIds: string[] } | null = null;
    // Each user's first request comes after a think time, as all its later ones.
    let due = start + (open ? exponential(random, perActionMs) : 0);
    for (;;) {
      if (due >= endMs || stopped) {
        if (session !== null) leftOpen.push(session.id);
        return;
      }
      const now = performance.now();
      // Whole milliseconds, rounded up: a timer never fires before its due time.
      if (due > now) await sleep(Math.ceil(due - now));
      if (!open) due = performance.now();
      if (stopped) return;
      if (due >= measureFrom) offered++;
      if (session === null) {
        const userId = spec.dataset.userId(drawUser());
        const res = await send(
          'start',
          'POST',
          '/v1/sessions',
          { userId, context: spec.text.message(random) },
          due,
        );
        if (res && res.status === 201) {
          const { sessionId, memoryIds } = startAnswer(res.text);
          session = { id: sessionId, userId, memoryIds };
          if (due >= measureFrom) sessions.started++;
        }
      } else {
        const action = actionOf(random());
        if (action === 'search') {
          await send(
            'search',
            'POST',
            `/v1/users/${session.userId}/memories/search`,
            { query: spec.text.query(random), k: 10 },
            due,
          );
        } else if (action === 'append') {
          const res = await send(
            'append',
            'POST',
            `/v1/sessions/${session.id}/messages`,
            {
              messages: [
                { role: random() < 0.5 ? 'user' : 'assistant', content: spec.text.message(random) },
              ],
            },
            due,
          );
          if (res?.status === 409) session = null;
        } else if (action === 'read') {
          const ids = session.memoryIds;
          const path =
            ids.length > 0
              ? `/v1/memories/${ids[Math.floor(random() * ids.length)]}`
              : `/v1/users/${session.userId}/memories?limit=20`;
          await send('read', 'GET', path, undefined, due);
        } else if (action === 'idle') {
          // Idle: no request now; the user comes back to the same session later (at once
          // when the loop is closed).
          if (due >= measureFrom) {
            offered--;
            sessions.idles++;
          }
          if (open) due += exponential(random, idleMs);
          continue;
        } else {
          await send('end', 'POST', `/v1/sessions/${session.id}/end`, {}, due);
          if (due >= measureFrom) sessions.ended++;
          session = null;
        }
      }
      if (open) due += exponential(random, thinkMs);
    }
  };

  await Promise.race([
    Promise.all(Array.from({ length: spec.vus }, (_, v) => user(v))),
    // Whatever is still in flight after the last due time gets `timeoutMs` to finish.
    // Unref'd: it must not keep the process alive once the run is over.
    sleep(Math.max(0, endMs - performance.now()) + timeoutMs + 1_000, undefined, { ref: false }),
  ]);
  stopped = true;
  clearTimeout(windowKick);
  if (windowTimer) clearInterval(windowTimer);
  // Never below the window asked for: `endMs - measureFrom` can come out a hair under it in
  // floating point (2 s as 1.9999999999999998) when the clock's values are large.
  const durationSec = Math.max(performance.now() - measureFrom, spec.durationSec * 1000) / 1000;
  // Requests still unanswered count as errors (and timeouts): their sockets are destroyed.
  const unanswered = inFlight;
  timeouts += unanswered;
  // The users leave: their conversations end with the run, so that the next run on the same
  // server does not carry the expiry of a thousand abandoned sessions (each expiry writes a
  // summary). Not recorded (due before the measured part), not in the figures above.
  await Promise.all(
    leftOpen.map((id) =>
      send('end', 'POST', `/v1/sessions/${id}/end`, {}, Number.NEGATIVE_INFINITY),
    ),
  );
  agent.destroy();

  const all = Object.values(samples);
  const errors = all.reduce((n, s) => n + s.errors, 0) + unanswered;
  const non2xx = all.reduce((n, s) => n + s.non2xx, 0);
  return {
    vus: spec.vus,
    offered,
    offeredRate: offered / spec.durationSec,
    sent,
    completed,
    errors,
    timeouts,
    non2xx,
    statusCodes,
    achievedRate: completed / durationSec,
    meanBytes: completed > 0 ? bytes / completed : 0,
    all: percentilesOf(merged(all)),
    reads: percentilesOf(merged(READ_OPS.map((op) => samples[op]))),
    writes: percentilesOf(merged(WRITE_OPS.map((op) => samples[op]))),
    ops: Object.fromEntries(
      OPS.map((op) => {
        const s = samples[op];
        return [
          op,
          {
            ...percentilesOf(s.values.subarray(0, s.count)),
            errors: s.errors,
            non2xx: s.non2xx,
          },
        ];
      }),
    ) as MixResult['ops'],
    sessions,
    sources,
    server: Object.fromEntries(
      OPS.map((op) => {
        const s = serverSamples[op];
        return [op, percentilesOf(s.values.subarray(0, s.count))];
      }),
    ) as MixResult['server'],
    durationSec,
  };
}
