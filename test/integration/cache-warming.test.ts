import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newCounters } from '../../src/cache/cache-stats.ts';
import { Warmer } from '../../src/cache/warmer.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { FakeClock, type TestApp, testApp } from '../helpers/app.ts';
import { openSqlite } from '../helpers/stores.ts';

const json = { 'content-type': 'application/json' };

async function add(t: TestApp, userId: string, content: string): Promise<void> {
  const res = await t.call({
    method: 'POST',
    url: '/v1/memories',
    headers: json,
    payload: { userId, content },
  });
  assert.equal(res.statusCode, 201);
}

const list = (t: TestApp, userId: string, query = '') =>
  t.call({ method: 'GET', url: `/v1/users/${userId}/memories${query}` });

describe('cache warming', () => {
  it('refreshes a user’s queries after a write, so the next read is a hit', async () => {
    const t = await testApp();
    try {
      await add(t, 'ann', 'first');
      await t.ctx.warmer.idle();
      assert.equal((await list(t, 'ann', '?limit=5')).headers['engram-cache'], 'store');
      assert.equal((await list(t, 'ann', '?limit=5')).headers['engram-cache'], 'l1');
      await add(t, 'ann', 'second');
      await t.ctx.warmer.idle();
      const after = await list(t, 'ann', '?limit=5');
      assert.equal(after.headers['engram-cache'], 'l1', 'refreshed ahead of the read');
      assert.deepEqual(
        after.json().items.map((m: { content: string }) => m.content),
        ['second', 'first'],
      );
      assert.ok(t.ctx.cache.stack.counters.warmed >= 1);
    } finally {
      await t.close();
    }
  });

  it('warms the most recently active users at boot', async () => {
    const db = await openSqlite();
    const first = await testApp({ store: db.store });
    await add(first, 'busy', 'hello');
    await add(first, 'idle', 'hello');
    await list(first, 'busy');
    await first.ctx.activity.flush();
    // A restart: a new instance over the same database, with a cold cache.
    const second = await testApp({ store: new SqliteStore(db.file) });
    try {
      assert.equal(await second.ctx.warming.warmRecent(), 2);
      await second.ctx.warmer.idle();
      const res = await list(second, 'busy');
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['engram-cache'], 'l1', 'the default page was warmed');
    } finally {
      await second.close();
      await first.close();
      await db.dispose();
    }
  });

  it('warms users ahead of the hour they are usually active in', async () => {
    const clock = new FakeClock(Date.parse('2026-03-02T06:50:00Z'));
    const t = await testApp({ clock, env: { ENGRAM_WARM_INTERVAL_MS: '900000' } });
    try {
      await add(t, 'early', 'coffee at seven');
      await add(t, 'late', 'tea at night');
      await t.ctx.warmer.idle();
      const hours = (h: number) => Array.from({ length: 24 }, (_, i) => (i === h ? 5 : 0));
      await t.ctx.store.recordActivity([
        { tenant: 'acme', userId: 'early', lastSeenAt: clock.now(), hours: hours(7) },
        { tenant: 'acme', userId: 'late', lastSeenAt: clock.now(), hours: hours(22) },
      ]);
      // The writes above filled the cache; start over cold to see what warming brings.
      t.ctx.cache.stack.clearLocal();
      assert.equal(await t.ctx.warming.warmAhead(), 1, 'only the 7 o’clock user at 06:50');
      await t.ctx.warmer.idle();
      assert.equal((await list(t, 'early')).headers['engram-cache'], 'l1');
      assert.equal((await list(t, 'late')).headers['engram-cache'], 'store');
    } finally {
      await t.close();
    }
  });
});

describe('warmer', () => {
  it('bounds concurrency and the queue, and runs a key once at a time', async () => {
    const counters = newCounters();
    const warmer = new Warmer(2, 5, counters, () => undefined);
    let running = 0;
    let peak = 0;
    const task = async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
    };
    const accepted = Array.from({ length: 10 }, (_, i) => warmer.enqueue(`k${i}`, task));
    assert.equal(warmer.enqueue('k9', task), false, 'a queued key is not queued twice');
    await warmer.idle();
    assert.equal(peak, 2);
    // Two start at once, five wait: the other three are dropped.
    assert.equal(accepted.filter(Boolean).length, 7);
    assert.equal(counters.warmed, 7);
  });
});
