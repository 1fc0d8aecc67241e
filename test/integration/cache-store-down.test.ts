/**
 * Store down: PostgreSQL behind a TCP proxy that is cut. Reads are answered from cache, marked
 * stale (header and field), within the grace window, and 503 ENGRAM_STORE_UNAVAILABLE after
 * it; writes answer 503 with Retry-After, fast once the store circuit is open; when the proxy
 * is restored, writes succeed again after the circuit's half-open delay. Store hung (the proxy
 * keeps connections open and forwards nothing): writes end in 503 within a bound, reads are
 * served stale within the read timeout.
 */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LightMyRequestResponse } from 'fastify';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { FakeClock, type TestApp, testApp } from '../helpers/app.ts';
import { needs, PG_URL, pgSchema } from '../helpers/services.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

const json = { 'content-type': 'application/json' };
const TTL_MS = 10_000;
const GRACE_MS = 120_000;
/** The store guard's circuit: opened by 5 consecutive failures, half-open after 2 s. */
const HALF_OPEN_MS = 2_000;

const { skip } = await needs('postgres');

/** A 503 ENGRAM_STORE_UNAVAILABLE with a Retry-After. */
function isUnavailable(res: LightMyRequestResponse): void {
  assert.equal(res.statusCode, 503, res.body);
  assert.equal(res.json().error.code, 'ENGRAM_STORE_UNAVAILABLE');
  assert.match(String(res.headers['retry-after']), /^\d+$/);
}

/** An app over a fresh PostgreSQL schema reached through a TCP proxy the test can cut. */
interface ProxiedApp {
  proxy: TcpProxy;
  t: TestApp;
  close: () => Promise<void>;
}

async function proxiedApp(clock: FakeClock, statementTimeoutMs: number): Promise<ProxiedApp> {
  const schema = await pgSchema();
  const target = new URL(PG_URL);
  const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  const url = new URL(schema.url);
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  const store = new PostgresStore({
    url: url.toString(),
    poolMax: 4,
    connectTimeoutMs: 500,
    statementTimeoutMs,
  });
  const t = await testApp({
    store,
    clock,
    env: {
      ENGRAM_STORE_TIMEOUT_MS: '500',
      ENGRAM_CACHE_TTL_MS: String(TTL_MS),
      ENGRAM_CACHE_GRACE_MS: String(GRACE_MS),
    },
  });
  return {
    proxy,
    t,
    close: async () => {
      proxy.restore();
      await t.close();
      await proxy.close();
      await schema.drop();
    },
  };
}

describe('store down (PostgreSQL behind a cut proxy)', { skip }, () => {
  let setup: ProxiedApp | undefined;
  let proxy: TcpProxy;
  let t: TestApp;
  const clock = new FakeClock();

  before(async () => {
    setup = await proxiedApp(clock, 2000);
    ({ proxy, t } = setup);
  });
  after(async () => {
    await setup?.close();
  });

  it('serves stale reads within grace, 503 after it, fails writes fast, and recovers', async (tc) => {
    const userId = `down-${randomUUID().slice(0, 8)}`;
    const list = `/v1/users/${userId}/memories`;
    const created: Array<{ id: string; content: string }> = [];
    for (const content of ['tea', 'coffee']) {
      const res = await t.call({
        method: 'POST',
        url: '/v1/memories',
        headers: json,
        payload: { userId, content },
      });
      assert.equal(res.statusCode, 201);
      created.unshift(res.json());
      clock.advance(1);
    }
    const byId = `/v1/memories/${(created[1] as { id: string }).id}`;
    const warm = new Map<string, LightMyRequestResponse>();
    for (const url of [list, byId]) {
      await t.call({ method: 'GET', url });
      const hit = await t.call({ method: 'GET', url });
      assert.equal(hit.headers['engram-cache'], 'l1');
      warm.set(url, hit);
    }
    const warmedAt = clock.now();

    proxy.cut();

    // Still fresh: served from L1 as usual, not marked.
    for (const url of [list, byId]) {
      const res = await t.call({ method: 'GET', url });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['engram-cache'], 'l1');
      assert.equal(res.headers['engram-stale'], undefined);
    }

    const expectStale = async (when: string): Promise<void> => {
      for (const url of [list, byId]) {
        const res = await t.call({ method: 'GET', url });
        assert.equal(res.statusCode, 200, `${when}: ${res.body}`);
        assert.equal(res.headers['engram-cache'], 'stale', when);
        assert.equal(res.headers['engram-stale'], 'true', when);
        const body = res.json();
        assert.equal(body.stale, true, when);
        const { stale: _, ...rest } = body;
        assert.deepEqual(rest, warm.get(url)?.json(), when);
        assert.equal(res.headers.etag, warm.get(url)?.headers.etag);
      }
    };
    // Past the TTL (with its +10% jitter), within grace: stale copies, marked.
    clock.time = warmedAt + TTL_MS * 1.1 + 1;
    await expectStale('just past the TTL');
    // A minute later: still within grace (and past the 30 s for which a verified API key is
    // remembered: authentication must not need the store either).
    clock.time = warmedAt + 60_000;
    await expectStale('a minute later');
    const staleServes = t.ctx.cache.stack.counters.staleServes;
    assert.ok(staleServes >= 4);

    // Writes: 503 with Retry-After; once the circuit is open (after 5 failures), at once.
    const times: number[] = [];
    for (let i = 0; i < 12; i++) {
      const started = performance.now();
      const res = await t.call({
        method: 'POST',
        url: '/v1/memories',
        headers: json,
        payload: { userId, content: `lost ${i}` },
      });
      times.push(performance.now() - started);
      isUnavailable(res);
      const patch = await t.call({
        method: 'PATCH',
        url: byId,
        headers: json,
        payload: { content: 'lost' },
      });
      isUnavailable(patch);
    }
    tc.diagnostic(
      `POST while the store is down: ${times.map((ms) => ms.toFixed(0)).join(', ')} ms`,
    );
    assert.ok(
      times.slice(5).every((ms) => ms < 200),
      `writes after the circuit opened: ${times.slice(5).map((ms) => ms.toFixed(0))}`,
    );

    // Past the grace window: nothing may be served any longer.
    clock.time = warmedAt + TTL_MS * 1.1 + GRACE_MS + 1;
    for (const url of [list, byId]) isUnavailable(await t.call({ method: 'GET', url }));

    // The store comes back: writes succeed again after the half-open delay.
    proxy.restore();
    const restoredAt = performance.now();
    let res: LightMyRequestResponse | undefined;
    while (performance.now() - restoredAt < HALF_OPEN_MS + 4_000) {
      res = await t.call({
        method: 'POST',
        url: '/v1/memories',
        headers: json,
        payload: { userId, content: 'after' },
      });
      if (res.statusCode === 201) break;
      isUnavailable(res);
      await sleep(100);
    }
    assert.equal(res?.statusCode, 201, 'writes did not succeed after the store came back');
    tc.diagnostic(
      `first write accepted ${(performance.now() - restoredAt).toFixed(0)} ms after restore`,
    );
    const page = await t.call({ method: 'GET', url: list });
    assert.equal(page.statusCode, 200);
    assert.equal(page.headers['engram-stale'], undefined);
    assert.deepEqual(
      page.json().items.map((m: { content: string }) => m.content),
      ['after', 'coffee', 'tea'],
    );
    const one = await t.call({ method: 'GET', url: byId });
    assert.equal(one.statusCode, 200);
    assert.equal(one.json().content, 'tea');
    assert.equal(one.json().stale, undefined);
  });
});

describe('store hung (PostgreSQL behind a proxy that forwards nothing)', { skip }, () => {
  let setup: ProxiedApp | undefined;
  let proxy: TcpProxy;
  let t: TestApp;
  const clock = new FakeClock();
  const STATEMENT_TIMEOUT_MS = 2_000;

  before(async () => {
    setup = await proxiedApp(clock, STATEMENT_TIMEOUT_MS);
    ({ proxy, t } = setup);
  });
  after(async () => {
    await setup?.close();
  });

  it('bounds writes, serves stale reads within the read timeout, and recovers', async (tc) => {
    const userId = `hung-${randomUUID().slice(0, 8)}`;
    const list = `/v1/users/${userId}/memories`;
    const post = (content: string) =>
      t.call({ method: 'POST', url: '/v1/memories', headers: json, payload: { userId, content } });
    assert.equal((await post('tea')).statusCode, 201);
    await t.call({ method: 'GET', url: list });
    const warm = await t.call({ method: 'GET', url: list });
    assert.equal(warm.headers['engram-cache'], 'l1');
    const warmedAt = clock.now();

    proxy.blackhole();
    // Writes while the store answers nothing: each ends (503) within a bound, none hangs.
    const bound = STATEMENT_TIMEOUT_MS + 1_500;
    let timer: NodeJS.Timeout | undefined;
    const writes = await Promise.race([
      Promise.all(
        Array.from({ length: 6 }, async (_, i) => {
          const started = performance.now();
          const res = await post(`lost ${i}`);
          return { res, ms: performance.now() - started };
        }),
      ),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`writes still waiting after ${5 * bound} ms`)),
          5 * bound,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    tc.diagnostic(`writes while hung: ${writes.map((w) => w.ms.toFixed(0)).join(', ')} ms`);
    for (const { res } of writes) isUnavailable(res);
    assert.ok(writes.every((w) => w.ms < bound));

    // Reads past the TTL: a stale copy after at most the read timeout, at once when open.
    clock.time = warmedAt + TTL_MS * 1.1 + 1;
    const readTimes: number[] = [];
    for (let i = 0; i < 8; i++) {
      const started = performance.now();
      const res = await t.call({ method: 'GET', url: list });
      readTimes.push(performance.now() - started);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.headers['engram-stale'], 'true');
      assert.equal(res.json().stale, true);
      assert.deepEqual(res.json().items, warm.json().items);
    }
    tc.diagnostic(`stale reads while hung: ${readTimes.map((ms) => ms.toFixed(0)).join(', ')} ms`);
    assert.ok(readTimes.every((ms) => ms < 500 + 400));

    proxy.restore();
    const restoredAt = performance.now();
    let res: LightMyRequestResponse | undefined;
    while (performance.now() - restoredAt < HALF_OPEN_MS + 8_000) {
      res = await post('after');
      if (res.statusCode === 201) break;
      await sleep(100);
    }
    assert.equal(res?.statusCode, 201, 'writes did not succeed after the store came back');
    const page = await t.call({ method: 'GET', url: list });
    assert.deepEqual(
      page.json().items.map((m: { content: string }) => m.content),
      ['after', 'tea'],
    );
  });
});
