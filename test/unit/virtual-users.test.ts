/**
 * The realistic mix's virtual users (bench/lib/virtual-users.ts) against a local node:http
 * server that answers as Engram does: the actions' shares, the offered and achieved rates, the
 * warm-up left out of the figures, latencies from due time (a stall counts in full), the closed
 * loop's bound on requests in flight, and connection errors counted per op.
 */

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { before, describe, it } from 'node:test';
import { type Dataset, planDataset, TextSource } from '../../bench/lib/dataset.ts';
import { actionOf, type MixResult, type MixSpec, runMix } from '../../bench/lib/virtual-users.ts';

const KEY = 'test-key';

/** One request as the server saw it. */
interface Seen {
  method: string;
  path: string;
  auth: string | undefined;
  at: number;
}

/** How the fake server behaves beyond Engram's answers. */
interface Behaviour {
  /** Delay (ms) of the answer to a request received at `now` (ms since the first request). */
  delayMs?: (sinceFirstMs: number) => number;
  /** Destroys the socket of every search instead of answering. */
  breakSearch?: boolean;
}

interface FakeEngram {
  base: string;
  seen: Seen[];
  /** Session ids the server issued. */
  issued: Set<string>;
  /** Most requests open at the server at once. */
  maxInFlight: () => number;
  close: () => Promise<void>;
}

/** Starts a server on a free port that imitates Engram's answers to the mix's requests. */
async function fakeEngram(behaviour: Behaviour = {}): Promise<FakeEngram> {
  const seen: Seen[] = [];
  const issued = new Set<string>();
  let sessions = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let first: number | undefined;

  const answer = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const path = req.url ?? '';
    const json = (status: number, body: object, timing?: string) => {
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        ...(timing === undefined ? {} : { 'server-timing': timing }),
      });
      res.end(text);
    };
    if (req.method === 'POST' && path === '/v1/sessions') {
      const id = `S${++sessions}`;
      issued.add(id);
      json(
        201,
        { session: { id }, preload: { items: [{ memory: { id: 'M1' } }] } },
        'app;dur=3.250, preload;dur=0.100;desc="index"',
      );
    } else if (req.method === 'POST' && /^\/v1\/users\/[^/]+\/memories\/search$/.test(path)) {
      json(200, { items: [] }, 'app;dur=1.500, index;desc="hit"');
    } else if (req.method === 'POST' && /^\/v1\/sessions\/[^/]+\/messages$/.test(path)) {
      json(201, { items: [] });
    } else if (req.method === 'GET' && /^\/v1\/memories\/[^/]+$/.test(path)) {
      json(200, { id: path.slice('/v1/memories/'.length) });
    } else if (req.method === 'POST' && /^\/v1\/sessions\/[^/]+\/end$/.test(path)) {
      json(200, { ended: true });
    } else {
      json(404, { error: 'not found' });
    }
  };

  const server = http.createServer((req, res) => {
    const now = performance.now();
    first ??= now;
    const path = req.url ?? '';
    seen.push({ method: req.method ?? '', path, auth: req.headers.authorization, at: now });
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      inFlight--;
    };
    res.on('finish', finish);
    res.on('close', finish);
    if (behaviour.breakSearch && path.endsWith('/memories/search')) {
      finish();
      req.socket.destroy();
      return;
    }
    // The whole body is read before answering, as a real server does.
    req.resume();
    req.on('end', () => {
      const delay = behaviour.delayMs?.(now - (first as number)) ?? 0;
      if (delay > 0) setTimeout(() => answer(req, res), delay);
      else answer(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    seen,
    issued,
    maxInFlight: () => maxInFlight,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let dataset: Dataset;
let text: TextSource;

before(async () => {
  dataset = planDataset({ users: 50, memories: 1_000, zipf: 1, maxPerUser: 200, seed: 1 });
  text = await TextSource.load();
});

/** Runs the mix against a fresh fake server and closes it. */
async function mix(
  spec: Partial<MixSpec> & Pick<MixSpec, 'vus' | 'rate' | 'durationSec'>,
  behaviour: Behaviour = {},
): Promise<{ result: MixResult; server: FakeEngram; startedAt: number }> {
  const server = await fakeEngram(behaviour);
  try {
    const startedAt = performance.now();
    // A short timeout: runMix's last timer runs until `timeoutMs` + 1 s past the end.
    const result = await runMix({
      base: server.base,
      key: KEY,
      dataset,
      text,
      timeoutMs: 2_000,
      ...spec,
    });
    return { result, server, startedAt };
  } finally {
    await server.close();
  }
}

function within(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= tolerance * expected,
    `${what}: ${actual}, expected ${expected} ± ${tolerance * 100} %`,
  );
}

describe('actionOf', () => {
  it('maps [0, 1) to actions by their shares', () => {
    assert.equal(actionOf(0), 'search');
    assert.equal(actionOf(0.2), 'search');
    assert.equal(actionOf(0.39999), 'search');
    assert.equal(actionOf(0.4), 'append');
    assert.equal(actionOf(0.74999), 'append');
    assert.equal(actionOf(0.75), 'read');
    assert.equal(actionOf(0.89999), 'read');
    assert.equal(actionOf(0.9), 'idle');
    assert.equal(actionOf(0.94999), 'idle');
    assert.equal(actionOf(0.95001), 'end');
    assert.equal(actionOf(0.99999), 'end');
  });

  it('puts 0.95 itself in end (the shares add up without float drift)', () => {
    assert.equal(actionOf(0.95), 'end');
  });
});

describe('runMix', () => {
  it('offers and achieves the open loop rate, with Engram-shaped requests', async () => {
    const rate = 200;
    const durationSec = 2;
    const { result: r, server } = await mix({ vus: 50, rate, durationSec, warmupSec: 1 });
    within(r.achievedRate, rate, 0.25, 'achieved rate');
    within(r.offeredRate, rate, 0.25, 'offered rate');
    assert.equal(r.errors, 0);
    assert.equal(r.timeouts, 0);
    assert.equal(r.non2xx, 0);
    assert.equal(r.vus, 50);
    // Every request due in the window was sent and answered.
    assert.equal(r.sent, r.offered);
    assert.equal(r.completed, r.sent);
    assert.ok(
      r.durationSec >= durationSec && r.durationSec < durationSec + 0.5,
      `${r.durationSec}`,
    );

    for (const s of server.seen) assert.equal(s.auth, `Bearer ${KEY}`, `${s.method} ${s.path}`);
    assert.equal(server.seen.filter((s) => s.path === '/v1/sessions').length, server.issued.size);
    let appends = 0;
    let ends = 0;
    const ended = new Set<string>();
    for (const s of server.seen) {
      const m = /^\/v1\/sessions\/([^/]+)\/(messages|end)$/.exec(s.path);
      if (m === null) continue;
      assert.ok(server.issued.has(m[1] as string), `${s.path}: not an issued session`);
      if (m[2] === 'messages') appends++;
      else {
        ends++;
        ended.add(m[1] as string);
      }
    }
    assert.ok(appends > 0 && ends > 0, `${appends} appends, ${ends} ends`);
    // The users leave with the run: no session is left open for the next run to expire.
    assert.equal(ended.size, server.issued.size);
    const reads = server.seen.filter((s) => s.method === 'GET');
    assert.ok(reads.length > 0);
    for (const s of reads) assert.equal(s.path, '/v1/memories/M1');
    const searches = server.seen.filter((s) => s.path.endsWith('/memories/search'));
    for (const s of searches) assert.match(s.path, /^\/v1\/users\/user-\d{6}\/memories\/search$/);

    // Sources from Server-Timing: every search a hit, every start from the index.
    assert.equal(r.sources['search:hit'], r.ops.search.count);
    assert.equal(r.sources['start:index'], r.ops.start.count);
    assert.ok(r.ops.search.count > 0 && r.ops.start.count > 0);
    // The server's own time (Server-Timing app), per op that reports it.
    assert.equal(r.server.search.count, r.ops.search.count);
    assert.equal(r.server.search.p50, 1.5);
    assert.equal(r.server.start.count, r.ops.start.count);
    assert.equal(r.server.start.max, 3.25);
    assert.equal(r.server.append.count, 0);
    // Shares: search 40 %, end 5 %.
    assert.ok(r.ops.search.count > 3 * r.ops.end.count, JSON.stringify(r.ops));
    assert.ok(r.ops.append.count > r.ops.read.count, JSON.stringify(r.ops));
    const total = Object.values(r.ops).reduce((n, o) => n + o.count, 0);
    assert.equal(total, r.completed);
    assert.equal(r.reads.count, r.ops.search.count + r.ops.read.count);
    assert.equal(r.writes.count, r.ops.start.count + r.ops.append.count + r.ops.end.count);
    assert.ok(r.sessions.started > 0 && r.sessions.ended > 0 && r.sessions.idles > 0);
    assert.equal(r.sessions.started, r.ops.start.count);
    assert.equal(r.sessions.ended, r.ops.end.count);
    assert.equal(r.statusCodes['201'], r.ops.start.count + r.ops.append.count);
    assert.ok(r.meanBytes > 0);
    // Latencies: none negative, ordered, and small against a server that answers at once.
    assert.ok(r.all.p50 >= 0, `p50 ${r.all.p50}`);
    assert.ok(r.all.p50 <= r.all.p90 && r.all.p90 <= r.all.p99 && r.all.p99 <= r.all.max);
    for (const op of Object.values(r.ops)) assert.ok(op.p50 >= 0);
    assert.equal(r.all.count, r.completed);
  });

  it('leaves the warm-up out of the figures', async () => {
    const rate = 200;
    const warmupSec = 1;
    const {
      result: r,
      server,
      startedAt,
    } = await mix({ vus: 50, rate, durationSec: 1, warmupSec });
    // About rate × 1 s recorded, though about rate × 2 s were sent.
    assert.ok(r.sent <= 1.5 * rate && r.sent >= 0.5 * rate, `sent ${r.sent}`);
    assert.ok(r.completed <= 1.5 * rate && r.completed >= 0.5 * rate, `completed ${r.completed}`);
    assert.equal(r.completed, r.sent);
    assert.equal(r.all.count, r.sent);
    // Against a server that answers at once, requests are sent when due: the recorded ones are
    // those the server received after the warm-up (give or take the boundary).
    const measureFrom = startedAt + warmupSec * 1000;
    const endsAt = measureFrom + 1_000;
    const before = server.seen.filter((s) => s.at < measureFrom).length;
    // Not the unrecorded ends of the sessions left open, sent after the run.
    const after = server.seen.filter((s) => s.at >= measureFrom && s.at < endsAt).length;
    assert.ok(before >= 0.5 * rate, `${before} requests in the warm-up`);
    assert.ok(Math.abs(after - r.sent) <= 10, `${after} after the warm-up, ${r.sent} recorded`);
    assert.ok(r.durationSec >= 1 && r.durationSec < 1.5, `${r.durationSec}`);
  });

  it('measures latency from due time: a server stall counts in full', async () => {
    const spec = { vus: 50, rate: 200, durationSec: 1.5 } as const;
    const { result: calm } = await mix(spec);
    // From 300 ms after the first request, every answer waits until 800 ms.
    const stallFrom = 300;
    const stallTo = 800;
    const { result: stalled } = await mix(spec, {
      delayMs: (t) => (t >= stallFrom && t < stallTo ? stallTo - t : 0),
    });
    assert.equal(calm.errors, 0);
    assert.equal(stalled.errors, 0);
    assert.ok(calm.all.p99 < 150, `p99 without the stall ${calm.all.p99} ms`);
    assert.ok(stalled.all.p99 >= 300, `p99 with a 500 ms stall ${stalled.all.p99} ms`);
    assert.ok(stalled.all.max >= 400 && stalled.all.max < 2_000, `max ${stalled.all.max} ms`);
  });

  it('counts the wait of requests due behind a stalled answer (no coordinated omission)', async () => {
    // Two users, no idle pauses to speak of: the server holds at most two requests, yet the
    // ≈ 20 requests that fall due during the stall are sent late, and their latencies run from
    // when they were due (0…500 ms). Timed from their send, p90 would be about 1 ms.
    const spec = { vus: 2, rate: 40, durationSec: 2, idleSec: 0.001 } as const;
    const { result: calm } = await mix(spec);
    const { result: stalled, server } = await mix(spec, {
      delayMs: (t) => (t >= 300 && t < 800 ? 800 - t : 0),
    });
    assert.equal(stalled.errors, 0);
    assert.ok(server.maxInFlight() <= 2);
    assert.ok(calm.all.p90 < 50, `p90 without the stall ${calm.all.p90} ms`);
    assert.ok(stalled.all.p90 >= 100, `p90 with the stall ${stalled.all.p90} ms`);
    assert.ok(stalled.all.max >= 300, `max with the stall ${stalled.all.max} ms`);
    // Requests due during the stall are still sent (none dropped from the schedule).
    assert.equal(stalled.sent, stalled.offered);
    assert.ok(Math.abs(stalled.sent - calm.sent) <= 5, `${stalled.sent} vs ${calm.sent} sent`);
  });

  it('closes the loop with rate 0: no more requests in flight than users and sockets', async () => {
    const { result: r, server } = await mix(
      { vus: 4, rate: 0, sockets: 4, durationSec: 1 },
      { delayMs: () => 2 },
    );
    assert.ok(r.completed > 0);
    assert.equal(r.errors, 0);
    assert.ok(server.maxInFlight() <= 4, `${server.maxInFlight()} in flight`);
    assert.ok(server.maxInFlight() >= 2, `${server.maxInFlight()} in flight`);
    // More users than sockets: the pool bounds what is in flight.
    const { result: pooled, server: s2 } = await mix(
      { vus: 6, rate: 0, sockets: 2, durationSec: 1 },
      { delayMs: () => 2 },
    );
    assert.ok(pooled.completed > 0);
    assert.equal(pooled.errors, 0);
    assert.ok(s2.maxInFlight() <= 2, `${s2.maxInFlight()} in flight`);
  });

  it('counts connection errors per op, and the other ops still complete', async () => {
    const { result: r } = await mix(
      { vus: 20, rate: 200, durationSec: 1, warmupSec: 0.5 },
      { breakSearch: true },
    );
    assert.ok(r.errors > 0);
    assert.ok(r.ops.search.errors > 0);
    assert.equal(r.ops.search.count, 0);
    assert.equal(r.errors, r.ops.search.errors);
    for (const op of ['start', 'append', 'read', 'end'] as const) {
      assert.equal(r.ops[op].errors, 0, `${op} errors`);
    }
    assert.ok(r.ops.start.count > 0 && r.ops.append.count > 0 && r.ops.read.count > 0);
    assert.equal(r.completed + r.errors, r.sent);
    assert.equal(r.sources['search:hit'], undefined);
  });
});
