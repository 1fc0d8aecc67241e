/**
 * The write/fill race, forced with a barrier: a read loads old data from the (real) store and
 * is held there; a write commits and moves the user's version; every read issued after the
 * write's 2xx must see the write, also after the held read finally fills the cache with its
 * old data (which must never pass for data of the new version). Without Redis and with the
 * shared Redis (plus a second instance reading through L2).
 */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LightMyRequestResponse } from 'fastify';
import type { ListFilter } from '../../src/memory/memory-types.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import { type TestApp, testApp } from '../helpers/app.ts';
import { needs, REDIS_URL } from '../helpers/services.ts';
import { openSqlite } from '../helpers/stores.ts';

const json = { 'content-type': 'application/json' };

/** A barrier armed for one store read: the read happens, then waits until released. */
interface Barrier {
  /** Resolves when the held read has read the store and is waiting. */
  entered: Promise<void>;
  release: () => void;
}

/** A real store whose next read matching an armed predicate is held after reading. */
function withBarrier(store: Store): {
  store: Store;
  arm: (method: 'listMemories' | 'getMemory', matches: (args: unknown[]) => boolean) => Barrier;
} {
  let armed:
    | {
        method: string;
        matches: (args: unknown[]) => boolean;
        enter: () => void;
        gate: Promise<void>;
      }
    | undefined;
  const wrapped = new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      if (property !== 'listMemories' && property !== 'getMemory') return value.bind(target);
      return async (...args: unknown[]) => {
        const hold = armed && armed.method === property && armed.matches(args) ? armed : undefined;
        if (hold) armed = undefined; // one read only
        const result = await value.apply(target, args);
        if (hold) {
          hold.enter();
          await hold.gate;
        }
        return result;
      };
    },
  });
  return {
    store: wrapped,
    arm(method, matches) {
      let enter!: () => void;
      let release!: () => void;
      const entered = new Promise<void>((resolve) => {
        enter = resolve;
      });
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      armed = { method, matches, enter, gate };
      return { entered, release };
    },
  };
}

/** Rejects when `promise` has not settled within `ms` (a barrier that is never reached). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const contents = (res: LightMyRequestResponse): string[] =>
  res.json().items.map((m: { content: string }) => m.content);

const redisSkip = (await needs('redis')).skip;

for (const [name, redis, skip] of [
  ['without Redis', false, false],
  ['with Redis', true, redisSkip],
] as const) {
  describe(`write/fill race ${name}`, { skip }, () => {
    let t: TestApp;
    let second: TestApp | undefined;
    let secondStore: SqliteStore | undefined;
    let barrier: ReturnType<typeof withBarrier>;
    let dispose: () => Promise<void>;
    // The shared Redis keeps versions and entries between runs: user ids unique to this run.
    const run = randomUUID().slice(0, 8);
    let n = 0;
    const user = (): string => `race-${run}-${n++}`;
    const env: Record<string, string> = { ENGRAM_STORE_TIMEOUT_MS: '30000' };
    if (redis) Object.assign(env, { REDIS_URL, ENGRAM_REDIS_TIMEOUT_MS: '1000' });

    before(async () => {
      const ts = await openSqlite();
      barrier = withBarrier(ts.store);
      t = await testApp({ store: barrier.store, env });
      if (redis) {
        // Another instance on the same database and Redis: it reads what this one put in L2.
        secondStore = new SqliteStore(ts.file);
        second = await testApp({ store: secondStore, env });
      }
      dispose = ts.dispose;
    });
    after(async () => {
      await t?.close();
      await second?.close();
      await dispose?.();
    });

    const add = async (userId: string, content: string): Promise<{ id: string }> => {
      const res = await t.call({
        method: 'POST',
        url: '/v1/memories',
        headers: json,
        payload: { userId, content },
      });
      assert.equal(res.statusCode, 201);
      return res.json();
    };
    const get = (url: string) => t.call({ method: 'GET', url });
    /**
     * Reads `url` on the other instance until `isNew` (the bus message of the write reaches it a
     * few ms after the write's 2xx: until then it may use the version before; the two-process
     * coherence test measures that window), then twice more: it must stay new. A late fill that
     * left old data under the new version in L2 would keep it old for minutes.
     */
    const newOnSecond = async (
      url: string,
      isNew: (res: LightMyRequestResponse) => boolean,
    ): Promise<void> => {
      if (!second) return;
      const started = Date.now();
      let res = await second.call({ method: 'GET', url });
      while (!isNew(res) && Date.now() - started < 500) {
        await sleep(5);
        res = await second.call({ method: 'GET', url });
      }
      assert.ok(isNew(res), `second instance: ${res.body}`);
      for (let i = 0; i < 2; i++) assert.ok(isNew(await second.call({ method: 'GET', url })));
    };

    it('a list read that loaded before a PATCH never hides the PATCH from later reads', async () => {
      const userId = user();
      const m = await add(userId, 'old');
      // A query no write refreshes ahead (limit 7): its first read is a cold load.
      const url = `/v1/users/${userId}/memories?limit=7`;
      const held = barrier.arm(
        'listMemories',
        ([, f]) => (f as ListFilter).userId === userId && (f as ListFilter).limit === 8,
      );
      const early = get(url);
      await within(held.entered, 5_000, 'the held list read');

      const patched = await t.call({
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        headers: json,
        payload: { content: 'new' },
      });
      assert.equal(patched.statusCode, 200);

      // Issued after the write's 2xx while the old load is still held: the new data.
      const during = await get(url);
      assert.equal(during.statusCode, 200);
      assert.deepEqual(contents(during), ['new']);

      held.release();
      const first = await early;
      assert.equal(first.statusCode, 200);
      // It started before the write and read the store before it: old data, as the barrier made.
      assert.deepEqual(contents(first), ['old']);

      // The held fill completed after the write: its old data must not be served now.
      for (let i = 0; i < 3; i++) {
        const res = await get(url);
        assert.deepEqual(contents(res), ['new'], `read ${i} after the held fill`);
      }
      assert.equal((await get(url)).headers['engram-cache'], 'l1');
      await newOnSecond(url, (res) => contents(res)[0] === 'new');
    });

    it('a list read that loaded before a POST never hides the new memory from later reads', async () => {
      const userId = user();
      await add(userId, 'one');
      const url = `/v1/users/${userId}/memories?limit=9`;
      const held = barrier.arm(
        'listMemories',
        ([, f]) => (f as ListFilter).userId === userId && (f as ListFilter).limit === 10,
      );
      const early = get(url);
      await within(held.entered, 5_000, 'the held list read');
      await add(userId, 'two');
      assert.deepEqual(contents(await get(url)), ['two', 'one']);
      held.release();
      assert.deepEqual(contents(await early), ['one']);
      for (let i = 0; i < 3; i++) assert.deepEqual(contents(await get(url)), ['two', 'one']);
      await newOnSecond(url, (res) => contents(res).join() === 'two,one');
    });

    it('a by-id read that loaded before a PATCH never hides the PATCH from later reads', async () => {
      const userId = user();
      const m = await add(userId, 'v1');
      const url = `/v1/memories/${m.id}`;
      assert.equal((await get(url)).json().content, 'v1'); // the owner is known from now on
      const patch = async (content: string) => {
        const res = await t.call({ method: 'PATCH', url, headers: json, payload: { content } });
        assert.equal(res.statusCode, 200);
      };
      await patch('v2'); // the cached answer is cold again
      const held = barrier.arm('getMemory', ([, id]) => id === m.id);
      const early = get(url);
      await within(held.entered, 5_000, 'the held by-id read');
      await patch('v3');
      assert.equal((await get(url)).json().content, 'v3');
      held.release();
      assert.equal((await early).json().content, 'v2');
      for (let i = 0; i < 3; i++) assert.equal((await get(url)).json().content, 'v3');
      const last = await get(url);
      assert.equal(last.headers['engram-cache'], 'l1');
      assert.equal(last.json().version, 3);
      await newOnSecond(url, (res) => res.json().content === 'v3');
    });
  });
}
