/**
 * Lost bus messages: two instances on one database and one (throwaway) Redis; instance B
 * reaches Redis through a TCP proxy, so cutting the proxy cuts both its L2 client and its bus
 * subscriber. A write on A during the cut is not announced to B: B may answer stale, but for
 * at most ENGRAM_CACHE_L1_TTL_MS (it cannot confirm its version any longer and bypasses its
 * cache). When the proxy comes back, B clears its L1 (the bus lost messages) and is fresh.
 */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { type TestApp, testApp } from '../helpers/app.ts';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.ts';
import { needs } from '../helpers/services.ts';
import { openSqlite, type TestStore } from '../helpers/stores.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

const json = { 'content-type': 'application/json' };
/** B's ENGRAM_CACHE_L1_TTL_MS: the longest B may answer stale while its bus is down. */
const L1_TTL_MS = 1_500;
/** Scheduling slack of a loaded machine. */
const MARGIN_MS = 250;

const { skip } = await needs('redis-server');

describe('lost bus messages', { skip }, () => {
  let redis: RedisServer;
  let proxy: TcpProxy;
  let ts: TestStore & { file: string };
  let a: TestApp;
  let b: TestApp;

  before(async () => {
    redis = await startRedisServer();
    proxy = await startTcpProxy({ port: redis.port });
    ts = await openSqlite();
    a = await testApp({ store: ts.store, env: { REDIS_URL: redis.url } });
    b = await testApp({
      store: new SqliteStore(ts.file),
      env: {
        REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
        ENGRAM_CACHE_L1_TTL_MS: String(L1_TTL_MS),
      },
    });
    assert.ok(b.ctx.cache.distributed);
  });
  after(async () => {
    await b?.close();
    await a?.close();
    await ts?.dispose();
    await proxy?.close();
    await redis?.stop();
  });

  it('answers stale for at most the L1 TTL while cut off, and clears L1 when the bus is back', async (tc) => {
    const userId = `bus-${randomUUID().slice(0, 8)}`;
    const list = `/v1/users/${userId}/memories`;
    const created = await a.call({
      method: 'POST',
      url: '/v1/memories',
      headers: json,
      payload: { userId, content: 'before the cut' },
    });
    assert.equal(created.statusCode, 201);
    const byId = `/v1/memories/${created.json().id}`;
    const contentOf = (res: {
      json: () => { items?: Array<{ content: string }>; content?: string };
    }) => {
      const body = res.json();
      return body.items ? body.items[0]?.content : body.content;
    };

    // B holds both answers in L1 (so it would answer stale if nothing told it otherwise).
    const warmedAt = performance.now();
    for (const url of [list, byId]) {
      assert.equal(contentOf(await b.call({ method: 'GET', url })), 'before the cut');
      const hit = await b.call({ method: 'GET', url });
      assert.equal(hit.headers['engram-cache'], 'l1');
      assert.equal(contentOf(hit), 'before the cut');
    }
    const counters = b.ctx.cache.stack.counters;
    const received = counters.busReceived;
    const patch = (content: string) =>
      a.call({ method: 'PATCH', url: byId, headers: json, payload: { content } });

    proxy.cut();
    assert.equal((await patch('during the cut')).statusCode, 200);
    const wroteAt = performance.now();

    // Poll B until well past the bound: stale answers only before it, fresh ones after it.
    const answers: Array<{ at: number; url: string; content: unknown; source: unknown }> = [];
    while (performance.now() - wroteAt < L1_TTL_MS + MARGIN_MS + 500) {
      for (const url of [list, byId]) {
        const started = performance.now();
        const res = await b.call({ method: 'GET', url });
        assert.equal(res.statusCode, 200);
        answers.push({
          at: started - wroteAt,
          url,
          content: contentOf(res),
          source: res.headers['engram-cache'],
        });
      }
      await sleep(50);
    }
    const stale = answers.filter((x) => x.content !== 'during the cut');
    const lastStale = Math.max(-1, ...stale.map((x) => x.at));
    tc.diagnostic(
      `B answered stale ${stale.length} of ${answers.length} times, the last ${lastStale.toFixed(0)} ms after the write`,
    );
    // The cut is real: right after the write (B's version still trusted) B answered stale.
    if ((answers[0]?.at ?? 0) + (wroteAt - warmedAt) < L1_TTL_MS - MARGIN_MS) {
      assert.equal(answers[0]?.content, 'before the cut');
      assert.equal(answers[0]?.source, 'l1');
    }
    assert.ok(
      stale.every((x) => x.source === 'l1'),
      'stale answers only from L1',
    );
    assert.ok(
      lastStale < L1_TTL_MS,
      `B answered stale ${lastStale.toFixed(0)} ms after the write (bound ${L1_TTL_MS} ms)`,
    );
    // After the bound B cannot confirm its version: it bypasses its cache.
    const late = answers.filter((x) => x.at > L1_TTL_MS + MARGIN_MS);
    assert.ok(late.length >= 2);
    assert.ok(late.every((x) => x.content === 'during the cut' && x.source === 'store'));
    assert.equal(counters.busReceived, received, 'no message reached B during the cut');
    assert.equal(counters.busReconnectClears, 0);

    // The proxy is back: B's subscriber reconnects and B clears its L1.
    proxy.restore();
    const deadline = Date.now() + 15_000;
    while (counters.busReconnectClears < 1 && Date.now() < deadline) await sleep(50);
    assert.ok(counters.busReconnectClears >= 1, 'B did not clear its L1 after the bus came back');
    for (const url of [list, byId]) {
      assert.equal(contentOf(await b.call({ method: 'GET', url })), 'during the cut');
    }

    // B caches again, and the bus carries A's writes to it again.
    const deadline2 = Date.now() + 10_000;
    let hit = await b.call({ method: 'GET', url: list });
    while (hit.headers['engram-cache'] !== 'l1' && Date.now() < deadline2) {
      await sleep(50);
      hit = await b.call({ method: 'GET', url: list });
    }
    assert.equal(hit.headers['engram-cache'], 'l1');
    const receivedBefore = counters.busReceived;
    assert.equal((await patch('after the cut')).statusCode, 200);
    // The message reaches B through the proxy, which runs in this process: an extra hop on this
    // event loop, so wait for its arrival (the two-process coherence test checks "at once").
    const deadline3 = Date.now() + 2_000;
    while (counters.busReceived === receivedBefore && Date.now() < deadline3) await sleep(5);
    assert.ok(counters.busReceived > receivedBefore, 'the bus carries messages to B again');
    for (const url of [list, byId]) {
      assert.equal(contentOf(await b.call({ method: 'GET', url })), 'after the cut');
    }
  });
});
