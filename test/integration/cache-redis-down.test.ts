/**
 * Redis killed (SIGKILL of a throwaway redis-server): L1 and the store keep serving, every read
 * and write succeeds, none waits longer than the L2 timeout (plus a margin for the machine),
 * writes are read back on the same instance; a new redis-server on the same port brings L2
 * back (L2 hits again) and the bus with it. Redis hung (SIGSTOP: connections open, no answer):
 * the same, bounded by the command timeout.
 */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LightMyRequestResponse } from 'fastify';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { type TestApp, testApp } from '../helpers/app.ts';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.ts';
import { needs } from '../helpers/services.ts';
import { openSqlite, type TestStore } from '../helpers/stores.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

const json = { 'content-type': 'application/json' };
const REDIS_TIMEOUT_MS = 100;
/** Slack for a loaded 2-core machine on top of the Redis timeout. */
const MARGIN_MS = 400;
const L1_TTL_MS = 2_000;

const { skip } = await needs('redis-server');

describe('Redis killed', { skip }, () => {
  let redis: RedisServer;
  let revived: RedisServer | undefined;
  let ts: TestStore & { file: string };
  let t: TestApp;
  let other: TestApp | undefined;
  const env = (url: string): Record<string, string> => ({
    REDIS_URL: url,
    ENGRAM_REDIS_TIMEOUT_MS: String(REDIS_TIMEOUT_MS),
    ENGRAM_CACHE_L1_TTL_MS: String(L1_TTL_MS),
  });

  before(async () => {
    redis = await startRedisServer();
    ts = await openSqlite();
    t = await testApp({ store: ts.store, env: env(redis.url) });
  });
  after(async () => {
    await other?.close();
    await t?.close();
    await ts?.dispose();
    await redis?.stop();
    await revived?.stop();
  });

  let slowest = 0;
  /** One request, timed: every one must end within the Redis timeout plus the margin. */
  const timed = async (
    app: TestApp,
    options: Parameters<TestApp['call']>[0],
  ): Promise<LightMyRequestResponse> => {
    const started = performance.now();
    const res = await app.call(options);
    const ms = performance.now() - started;
    slowest = Math.max(slowest, ms);
    assert.ok(
      ms < REDIS_TIMEOUT_MS + MARGIN_MS,
      `${options.method} ${options.url} took ${ms.toFixed(0)} ms`,
    );
    return res;
  };

  it('keeps serving from L1 and the store, fast, and recovers when Redis is back', async (tc) => {
    const userId = `down-${randomUUID().slice(0, 8)}`;
    const list = `/v1/users/${userId}/memories`;
    /** The user's memories, newest first (as listed). */
    const created: Array<{ id: string; content: string }> = [];
    for (let i = 0; i < 3; i++) {
      const res = await t.call({
        method: 'POST',
        url: '/v1/memories',
        headers: json,
        payload: { userId, content: `before ${i}` },
      });
      assert.equal(res.statusCode, 201);
      created.unshift(res.json());
    }
    const first = created[2] as { id: string };
    const byId = `/v1/memories/${first.id}`;
    for (const url of [list, byId]) {
      await t.call({ method: 'GET', url });
      assert.equal((await t.call({ method: 'GET', url })).headers['engram-cache'], 'l1');
    }
    const counters = t.ctx.cache.stack.counters;
    assert.ok(counters.l2Misses > 0, 'L2 was in use before the kill');

    await redis.stop();
    const killedAt = performance.now();

    // Right after the kill, within the trust window: L1 hits.
    for (const url of [list, byId]) {
      const res = await timed(t, { method: 'GET', url });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['engram-cache'], 'l1');
    }

    let reads = 2;
    let writes = 0;
    let lastWriteAt = killedAt;
    // 20 writes, each read back at once (list and by id), with more reads between them.
    for (let i = 0; i < 20; i++) {
      let written: { id: string; content: string };
      if (i % 2 === 0) {
        const res = await timed(t, {
          method: 'POST',
          url: '/v1/memories',
          headers: json,
          payload: { userId, content: `during ${i}` },
        });
        assert.equal(res.statusCode, 201, res.body);
        written = res.json();
        created.unshift(written);
      } else {
        const res = await timed(t, {
          method: 'PATCH',
          url: byId,
          headers: json,
          payload: { content: `changed ${i}` },
        });
        assert.equal(res.statusCode, 200, res.body);
        written = res.json();
        const at = created.findIndex((m) => m.id === first.id);
        created[at] = written;
      }
      writes++;
      lastWriteAt = performance.now();
      const one = await timed(t, { method: 'GET', url: `/v1/memories/${written.id}` });
      assert.equal(one.statusCode, 200);
      assert.equal(one.json().content, written.content);
      const page = await timed(t, { method: 'GET', url: list });
      assert.equal(page.statusCode, 200);
      assert.deepEqual(
        page.json().items.map((m: { content: string }) => m.content),
        created.map((m) => m.content),
      );
      reads += 2;
      for (let j = 0; j < 3; j++) {
        const res = await timed(t, { method: 'GET', url: j === 0 ? byId : list });
        assert.equal(res.statusCode, 200);
        reads++;
      }
    }

    // Past the trust window (a local write starts it again: it voids the user's entries) no
    // version can be confirmed: reads bypass the cache, still fast.
    const wait = L1_TTL_MS + 100 - (performance.now() - lastWriteAt);
    if (wait > 0) await sleep(wait);
    while (reads < 200) {
      const res = await timed(t, { method: 'GET', url: reads % 2 === 0 ? list : byId });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['engram-cache'], 'store');
      reads++;
    }
    assert.equal(reads, 200);
    assert.equal(writes, 20);
    assert.ok(slowest < REDIS_TIMEOUT_MS + MARGIN_MS);
    tc.diagnostic(`slowest request while Redis was down: ${slowest.toFixed(1)} ms`);

    // A new redis-server on the same port: the instance reconnects and uses L2 again. Another
    // instance on the same database and Redis fills a key; this one must then hit it in L2.
    revived = await startRedisServer(redis.port);
    other = await testApp({ store: new SqliteStore(ts.file), env: env(revived.url) });
    const l2Hits = counters.l2Hits;
    const deadline = Date.now() + 15_000;
    let recovered = false;
    for (let limit = 1; Date.now() < deadline; limit = (limit % 100) + 1) {
      const url = `${list}?limit=${limit}`;
      await other.call({ method: 'GET', url });
      const res = await t.call({ method: 'GET', url });
      assert.equal(res.statusCode, 200);
      if (res.headers['engram-cache'] === 'l2') {
        recovered = true;
        break;
      }
      await sleep(100);
    }
    assert.ok(recovered, 'no L2 hit within 15 s of Redis coming back');
    assert.ok(counters.l2Hits > l2Hits);

    // The bus is back too: the other instance takes a write of this one (within its delivery
    // time, far below its 2 s version trust that would apply without the bus).
    await other.call({ method: 'GET', url: byId });
    const patched = await t.call({
      method: 'PATCH',
      url: byId,
      headers: json,
      payload: { content: 'after recovery' },
    });
    assert.equal(patched.statusCode, 200);
    const patchedAt = Date.now();
    let seen = await other.call({ method: 'GET', url: byId });
    while (seen.json().content !== 'after recovery' && Date.now() - patchedAt < 500) {
      await sleep(5);
      seen = await other.call({ method: 'GET', url: byId });
    }
    assert.equal(seen.json().content, 'after recovery');
  });
});

describe('Redis hung', { skip }, () => {
  let redis: RedisServer;
  let t: TestApp;

  before(async () => {
    redis = await startRedisServer();
    t = await testApp({
      env: {
        REDIS_URL: redis.url,
        ENGRAM_REDIS_TIMEOUT_MS: String(REDIS_TIMEOUT_MS),
        ENGRAM_CACHE_L1_TTL_MS: '100',
      },
    });
  });
  after(async () => {
    redis?.resume();
    await t?.close();
    await redis?.stop();
  });

  it('answers every request within the command timeout plus a margin, and reads its writes', async (tc) => {
    const userId = `hung-${randomUUID().slice(0, 8)}`;
    const list = `/v1/users/${userId}/memories`;
    const post = (content: string) =>
      t.call({ method: 'POST', url: '/v1/memories', headers: json, payload: { userId, content } });
    assert.equal((await post('before')).statusCode, 201);
    await t.call({ method: 'GET', url: list });
    redis.pause();
    let slowest = 0;
    const expected = ['before'];
    for (let i = 0; i < 10; i++) {
      let started = performance.now();
      const res = await post(`while hung ${i}`);
      slowest = Math.max(slowest, performance.now() - started);
      assert.equal(res.statusCode, 201);
      expected.unshift(`while hung ${i}`);
      for (let j = 0; j < 5; j++) {
        started = performance.now();
        const page = await t.call({ method: 'GET', url: list });
        slowest = Math.max(slowest, performance.now() - started);
        assert.equal(page.statusCode, 200);
        assert.deepEqual(
          page.json().items.map((m: { content: string }) => m.content),
          expected,
        );
      }
    }
    tc.diagnostic(`slowest request while Redis was hung: ${slowest.toFixed(1)} ms`);
    // One Redis timeout at most per request: a write whose bump timed out does not also wait
    // for a publish (two sequential timeouts would take ≥ 2 × the timeout).
    assert.ok(slowest < 2 * REDIS_TIMEOUT_MS, `slowest ${slowest.toFixed(0)} ms`);
    assert.ok(t.ctx.cache.stack.counters.l2Errors > 0);
    redis.resume();
  });
});

describe('Redis failing for one instance while its connection stays up', { skip }, () => {
  let redis: RedisServer;
  let proxy: TcpProxy;
  let ts: TestStore & { file: string };
  let a: TestApp;
  let c: TestApp;
  let d: TestApp | undefined;

  before(async () => {
    redis = await startRedisServer();
    proxy = await startTcpProxy({ port: redis.port });
    ts = await openSqlite();
    a = await testApp({
      store: ts.store,
      env: {
        REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
        ENGRAM_REDIS_TIMEOUT_MS: String(REDIS_TIMEOUT_MS),
      },
    });
    c = await testApp({ store: new SqliteStore(ts.file), env: { REDIS_URL: redis.url } });
  });
  after(async () => {
    await d?.close();
    await c?.close();
    await a?.close();
    await ts?.dispose();
    await proxy?.close();
    await redis?.stop();
  });

  it('writes the version bumps Redis missed once Redis answers again', async (tc) => {
    const userId = `flaky-${randomUUID().slice(0, 8)}`;
    const list = `/v1/users/${userId}/memories`;
    const posted = await a.call({
      method: 'POST',
      url: '/v1/memories',
      headers: json,
      payload: { userId, content: 'old' },
    });
    assert.equal(posted.statusCode, 201);
    // C holds the list in L1 and L2 under the current version.
    await c.call({ method: 'GET', url: list });
    assert.equal((await c.call({ method: 'GET', url: list })).headers['engram-cache'], 'l1');

    // A's Redis answers too slowly: its commands time out and its L2 circuit opens.
    const counters = a.ctx.cache.stack.counters;
    proxy.delay(3 * REDIS_TIMEOUT_MS);
    for (let i = 1; counters.l2Errors < 6 && i < 40; i++) {
      await a.call({ method: 'GET', url: `${list}?limit=${i}` });
    }
    assert.ok(counters.l2Errors >= 6, `l2Errors ${counters.l2Errors}`);
    proxy.delay(0);
    await sleep(4 * REDIS_TIMEOUT_MS); // the late answers arrive; the connection never dropped

    // A write on A while its circuit is open: the bump cannot reach Redis now.
    const patched = await a.call({
      method: 'PATCH',
      url: `/v1/memories/${posted.json().id}`,
      headers: json,
      payload: { content: 'new' },
    });
    assert.equal(patched.statusCode, 200);
    const wroteAt = performance.now();

    // An instance that did not hear of the write reads the version from Redis: once A's
    // circuit lets it through again, the missed bump must be written, else that instance
    // trusts the old entries until they expire (minutes).
    d = await testApp({
      store: new SqliteStore(ts.file),
      env: { REDIS_URL: redis.url, ENGRAM_CACHE_L1_TTL_MS: '500' },
    });
    let content: unknown;
    while (performance.now() - wroteAt < 8_000) {
      const res = await d.call({ method: 'GET', url: list });
      content = res.json().items[0]?.content;
      if (content === 'new') break;
      await sleep(100);
    }
    tc.diagnostic(
      `fresh on a third instance ${(performance.now() - wroteAt).toFixed(0)} ms after the write`,
    );
    assert.equal(content, 'new', 'the bump Redis missed was never written');
    assert.equal(a.ctx.cache.stack.counters.invalidations > 0, true);
  });
});
