/**
 * The open-loop load generator (bench/lib/open-loop.ts) against local node:http servers: its
 * schedule, that a server stall shows in its percentiles where a closed loop hides it
 * (coordinated omission), and how it counts status codes and connection errors.
 */

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { openLoop, percentile } from '../../bench/lib/open-loop.ts';

/** Starts a server on a free port; `close` ends it and its keep-alive sockets. */
async function serve(
  handler: http.RequestListener,
): Promise<{ base: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A server that answers at once, except that from `stallAtMs` to `stallAtMs + stallMs` after its
 * first request it holds every answer, and releases them all when the stall ends.
 */
function stallingHandler(stallAtMs: number, stallMs: number): http.RequestListener {
  let first: number | undefined;
  const held: http.ServerResponse[] = [];
  let released = false;
  return (req, res) => {
    req.resume();
    const now = performance.now();
    if (first === undefined) {
      first = now;
      setTimeout(() => {
        released = true;
        for (const r of held.splice(0)) r.end('ok');
      }, stallAtMs + stallMs);
    }
    const t = now - first;
    if (!released && t >= stallAtMs) held.push(res);
    else res.end('ok');
  };
}

/** One connection, each request sent once the previous has answered: latencies in ms. */
async function closedLoop(base: string, durationSec: number): Promise<Float64Array> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const latencies: number[] = [];
  const end = performance.now() + durationSec * 1000;
  while (performance.now() < end) {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      http
        .get(`${base}/`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        })
        .on('error', reject);
    });
    latencies.push(performance.now() - t0);
  }
  agent.destroy();
  return Float64Array.from(latencies).sort();
}

describe('open-loop load generator', () => {
  it('keeps a fast server at the offered rate with low latency', async () => {
    const server = await serve((req, res) => {
      req.resume();
      res.end('ok');
    });
    try {
      const r = await openLoop({
        base: server.base,
        rate: 500,
        durationSec: 2,
        request: (n) => ({ method: 'GET', path: `/item/${n}` }),
      });
      assert.equal(r.offered, 1000);
      assert.ok(Math.abs(r.sent - 1000) <= 50, `sent ${r.sent}`);
      assert.equal(r.errors, 0);
      assert.equal(r.timeouts, 0);
      assert.equal(r.completed, r.sent);
      assert.deepEqual(r.statusCodes, { '200': r.completed });
      assert.ok(r.latencyMs.p50 < 20, `p50 ${r.latencyMs.p50} ms`);
      assert.ok(r.latencyMs.p50 <= r.latencyMs.p99 && r.latencyMs.p99 <= r.latencyMs.max);
      assert.ok(r.achievedRate > 400 && r.achievedRate < 550, `rate ${r.achievedRate}`);
    } finally {
      await server.close();
    }
  });

  it('does not hide a server stall (no coordinated omission), unlike a closed loop', async (t) => {
    const open = await serve(stallingHandler(1000, 500));
    let openP99: number;
    try {
      const r = await openLoop({
        base: open.base,
        rate: 200,
        durationSec: 3,
        request: () => ({ method: 'GET', path: '/' }),
      });
      assert.equal(r.errors, 0);
      assert.equal(r.completed, 600);
      openP99 = r.latencyMs.p99;
      assert.ok(r.latencyMs.max >= 400, `max ${r.latencyMs.max} ms`);
    } finally {
      await open.close();
    }

    const closed = await serve(stallingHandler(1000, 500));
    let closedP99: number;
    let closedMax: number;
    try {
      const latencies = await closedLoop(closed.base, 3);
      closedP99 = percentile(latencies, 0.99);
      closedMax = latencies[latencies.length - 1] ?? 0;
    } finally {
      await closed.close();
    }
    t.diagnostic(`open p99 ${openP99.toFixed(1)} ms, closed p99 ${closedP99.toFixed(2)} ms`);
    // The closed loop did see the stall, once.
    assert.ok(closedMax >= 400, `closed max ${closedMax} ms`);
    assert.ok(openP99 >= 200, `open p99 ${openP99} ms`);
    assert.ok(openP99 > 3 * closedP99, `open p99 ${openP99} ms, closed p99 ${closedP99} ms`);
  });

  it('counts status codes, and connection errors without throwing', async () => {
    let count = 0;
    const server = await serve((req, res) => {
      req.resume();
      count++;
      res.statusCode = count % 10 === 0 ? 503 : 200;
      res.end();
    });
    try {
      const r = await openLoop({
        base: server.base,
        rate: 200,
        durationSec: 0.5,
        request: (n) => ({ method: 'POST', path: '/w', body: JSON.stringify({ n }) }),
      });
      assert.equal(r.sent, 100);
      assert.equal(r.errors, 0);
      assert.deepEqual(r.statusCodes, { '200': 90, '503': 10 });
    } finally {
      await server.close();
    }

    // A port nobody listens on: take a free one, then free it.
    const gone = await serve(() => {});
    await gone.close();
    const r = await openLoop({
      base: gone.base,
      rate: 100,
      durationSec: 0.3,
      request: () => ({ method: 'GET', path: '/' }),
    });
    assert.equal(r.sent, 30);
    assert.equal(r.errors, 30);
    assert.equal(r.completed, 0);
    assert.equal(r.timeouts, 0);
    assert.deepEqual(r.statusCodes, {});
    assert.equal(r.latencyMs.p99, 0);
  });
});
