/**
 * Single flight: N concurrent cold reads of one key cost one store read, without Redis and
 * with the shared Redis. The store is a real SQLite store behind a counting wrapper whose reads
 * are held after reading until the other requests have joined, so that the requests really
 * overlap (without single flight every one of them would read the store).
 */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { newMemoryId } from '../../src/memory/ids.ts';
import type { MemoryRow } from '../../src/memory/memory-types.ts';
import type { Store } from '../../src/store/store.ts';
import { type TestApp, testApp } from '../helpers/app.ts';
import { memoryRow } from '../helpers/rows.ts';
import { needs, REDIS_URL } from '../helpers/services.ts';
import { openSqlite, type TestStore } from '../helpers/stores.ts';

const N = 500;

type Counted = 'listMemories' | 'getMemory';

/** A real store that counts its reads and can hold each read (after reading) on `hold()`. */
function counting(store: Store): {
  store: Store;
  calls: Record<Counted, number>;
  setHold: (hold: (() => Promise<void>) | null) => void;
} {
  const calls: Record<Counted, number> = { listMemories: 0, getMemory: 0 };
  let hold: (() => Promise<void>) | null = null;
  const wrapped = new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      if (property === 'listMemories' || property === 'getMemory') {
        return async (...args: unknown[]) => {
          calls[property]++;
          const result = await value.apply(target, args);
          if (hold) await hold();
          return result;
        };
      }
      return value.bind(target);
    },
  });
  return {
    store: wrapped,
    calls,
    setHold: (h) => {
      hold = h;
    },
  };
}

/** Resolves once `condition()` holds (checked every 2 ms), or after `maxMs`. */
async function until(condition: () => boolean, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!condition() && Date.now() < deadline) await sleep(2);
}

function row(tenant: string, userId: string, content: string, at: number): MemoryRow {
  return memoryRow({ tenant, userId, content, createdAt: at, id: newMemoryId(at, Date.now()) });
}

const redisSkip = (await needs('redis')).skip;

for (const [name, env, skip] of [
  ['without Redis', {} as Record<string, string>, false],
  ['with Redis', { REDIS_URL, ENGRAM_REDIS_TIMEOUT_MS: '2000' }, redisSkip],
] as const) {
  describe(`single flight ${name}`, { skip }, () => {
    let ts: TestStore;
    let t: TestApp;
    let counted: ReturnType<typeof counting>;
    // The shared Redis keeps versions and entries between runs: user ids unique to this run.
    const run = randomUUID().slice(0, 8);
    const userId = `stampede-${run}`;
    const rows = [1, 2, 3].map((i) => row('acme', userId, `memory ${i}`, Date.now() - i * 1000));

    before(async () => {
      ts = await openSqlite();
      // Written under the app (not through it): no write-triggered refresh loads anything.
      await ts.store.insertMemories(rows);
      counted = counting(ts.store);
      t = await testApp({
        store: counted.store,
        env: { ENGRAM_STORE_TIMEOUT_MS: '20000', ...env },
      });
    });
    after(async () => {
      await t?.close();
      await ts?.dispose();
    });

    const fire = (url: string) =>
      Promise.all(Array.from({ length: N }, () => t.call({ method: 'GET', url })));

    it(`${N} concurrent cold list reads cost 1 store read`, async () => {
      const counters = t.ctx.cache.stack.counters;
      const joined0 = counters.fillsJoined;
      const fills0 = counters.fills;
      counted.calls.listMemories = 0;
      // The one load is held until all the other requests have joined it.
      counted.setHold(() => until(() => counters.fillsJoined - joined0 >= N - 1, 15_000));
      const url = `/v1/users/${userId}/memories?limit=20`;
      const answers = await fire(url);
      counted.setHold(null);

      assert.deepEqual(
        answers.map((r) => r.statusCode),
        Array(N).fill(200),
      );
      assert.equal(counted.calls.listMemories, 1);
      assert.equal(counters.fillsJoined - joined0, N - 1);
      assert.equal(counters.fills - fills0, 1);
      const first = answers[0]?.body;
      assert.ok(answers.every((r) => r.body === first));
      assert.ok(answers.every((r) => r.headers['engram-cache'] === 'store'));
      assert.deepEqual(
        JSON.parse(String(first)).items.map((m: { content: string }) => m.content),
        ['memory 1', 'memory 2', 'memory 3'],
      );

      // And once filled, none of the next N reads touches the store.
      const again = await fire(url);
      assert.ok(again.every((r) => r.statusCode === 200 && r.body === first));
      assert.ok(again.every((r) => r.headers['engram-cache'] === 'l1'));
      assert.equal(counted.calls.listMemories, 1);
    });

    it(`${N} concurrent first reads of one memory cost 2 store reads (owner, then load)`, async () => {
      const target = rows[1] as MemoryRow;
      counted.calls.getMemory = 0;
      // Each read is held 300 ms: the requests overlap, whichever way they share work.
      counted.setHold(() => sleep(300));
      const answers = await fire(`/v1/memories/${target.id}`);
      counted.setHold(null);
      assert.ok(answers.every((r) => r.statusCode === 200));
      assert.ok(answers.every((r) => r.json().content === 'memory 2'));
      // The first read learns the memory's owner (to read that user's version before loading):
      // one read for the owner, one load; concurrent first reads share both.
      assert.equal(counted.calls.getMemory, 2);
    });

    it(`${N} concurrent cold reads of a memory whose owner is known cost 1 store read`, async () => {
      const target = rows[2] as MemoryRow;
      const url = `/v1/memories/${target.id}`;
      assert.equal((await t.call({ method: 'GET', url })).statusCode, 200);
      // A write moves the user's version: the cached answer is cold again, the owner still known.
      const patched = await t.call({
        method: 'PATCH',
        url,
        headers: { 'content-type': 'application/json' },
        payload: { content: 'memory 3, changed' },
      });
      assert.equal(patched.statusCode, 200);
      const counters = t.ctx.cache.stack.counters;
      const joined0 = counters.fillsJoined;
      counted.calls.getMemory = 0;
      counted.setHold(() => until(() => counters.fillsJoined - joined0 >= N - 1, 15_000));
      const answers = await fire(url);
      counted.setHold(null);
      assert.ok(answers.every((r) => r.statusCode === 200));
      assert.ok(answers.every((r) => r.json().content === 'memory 3, changed'));
      assert.equal(counted.calls.getMemory, 1);
      assert.equal(counters.fillsJoined - joined0, N - 1);
    });
  });
}
