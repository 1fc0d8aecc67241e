/**
 * Cached GET answers (no Redis, SQLite): ETag and Cache-Control, L1 hits with identical bodies,
 * 304 on If-None-Match, read-your-writes after every kind of write (list and by id), one entry
 * per distinct query, expiry inside a cached list, and no cached answer crossing tenants.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { FakeClock, type TestApp, testApp } from '../helpers/app.ts';

const json = { 'content-type': 'application/json' };

interface PublicMemory {
  id: string;
  userId: string;
  content: string;
  kind: string;
  tags: string[];
  pinned: boolean;
  version: number;
  expiresAt: string | null;
}

describe('cached GET responses', () => {
  let t: TestApp;
  const clock = new FakeClock();
  let n = 0;
  const user = (): string => `resp-u${n++}`;

  before(async () => {
    t = await testApp({ clock });
  });
  after(async () => {
    await t?.close();
  });

  const add = async (body: Record<string, unknown>): Promise<PublicMemory> => {
    const res = await t.call({ method: 'POST', url: '/v1/memories', headers: json, payload: body });
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  };
  const get = (url: string, headers: Record<string, string> = {}) =>
    t.call({ method: 'GET', url, headers });
  const source = (res: LightMyRequestResponse): unknown => res.headers['engram-cache'];
  const ids = (res: LightMyRequestResponse): string[] =>
    res.json().items.map((m: PublicMemory) => m.id);

  /**
   * An answer read after a write: from the store, or from L1 when the write's background
   * refresh (refresh-ahead of the user's lists) already loaded it under the new version. Never
   * the answer held before the write (`before`: its ETag).
   */
  const afterWrite = (res: LightMyRequestResponse, before: LightMyRequestResponse): void => {
    assert.equal(res.statusCode, 200, res.body);
    assert.ok(['store', 'l1'].includes(String(source(res))), `source ${source(res)}`);
    assert.notEqual(res.headers.etag, before.headers.etag, 'the answer held before the write');
  };

  /** Reads `url` twice: the second answer must be an L1 hit with the same body and ETag. */
  const warm = async (url: string): Promise<LightMyRequestResponse> => {
    const first = await get(url);
    assert.equal(first.statusCode, 200, first.body);
    const second = await get(url);
    assert.equal(second.statusCode, 200);
    assert.equal(source(second), 'l1', `${url} should be held in L1 after one read`);
    assert.equal(second.body, first.body);
    assert.equal(second.headers.etag, first.headers.etag);
    return second;
  };

  it('answers with an ETag and private, no-cache; the second read is an identical L1 hit', async () => {
    const userId = user();
    const m = await add({ userId, content: 'Bob drinks black coffee' });
    for (const url of [`/v1/memories/${m.id}`, `/v1/users/${userId}/memories`]) {
      const first = await get(url);
      assert.equal(first.statusCode, 200);
      // A list may already have been loaded by the write's background refresh.
      if (url.startsWith('/v1/memories/')) assert.equal(source(first), 'store');
      else assert.ok(['store', 'l1'].includes(String(source(first))));
      assert.match(String(first.headers.etag), /^"[A-Za-z0-9_-]{22}"$/);
      assert.equal(first.headers['cache-control'], 'private, no-cache');
      assert.match(String(first.headers['content-type']), /^application\/json/);
      assert.equal(first.headers['engram-stale'], undefined);
      const second = await get(url);
      assert.equal(second.statusCode, 200);
      assert.equal(source(second), 'l1');
      assert.equal(second.body, first.body);
      assert.equal(second.headers.etag, first.headers.etag);
      assert.equal(second.headers['cache-control'], 'private, no-cache');
    }
    const byId = await get(`/v1/memories/${m.id}`);
    assert.deepEqual(byId.json(), m);
    assert.deepEqual(ids(await get(`/v1/users/${userId}/memories`)), [m.id]);
    assert.equal(t.ctx.cache.stack.counters.l1Hits >= 3, true);
  });

  it('answers 304 without a body to a matching If-None-Match, 200 otherwise', async () => {
    const userId = user();
    const m = await add({ userId, content: 'likes jazz' });
    for (const url of [`/v1/memories/${m.id}`, `/v1/users/${userId}/memories`]) {
      const first = await get(url);
      const etag = String(first.headers.etag);
      for (const header of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
        const res = await get(url, { 'if-none-match': header });
        assert.equal(res.statusCode, 304, `If-None-Match: ${header}`);
        assert.equal(res.body, '');
        assert.equal(res.headers.etag, etag);
        assert.equal(res.headers['cache-control'], 'private, no-cache');
      }
      const other = await get(url, { 'if-none-match': '"not-this-one"' });
      assert.equal(other.statusCode, 200);
      assert.equal(other.body, first.body);
    }
    // After a change the old ETag no longer matches: the client gets the new body.
    const url = `/v1/memories/${m.id}`;
    const before304 = String((await get(url)).headers.etag);
    const patched = await t.call({
      method: 'PATCH',
      url,
      headers: json,
      payload: { content: 'loves jazz' },
    });
    assert.equal(patched.statusCode, 200);
    const after = await get(url, { 'if-none-match': before304 });
    assert.equal(after.statusCode, 200);
    assert.equal(after.json().content, 'loves jazz');
    assert.notEqual(after.headers.etag, before304);
  });

  it('reads its own writes: every kind of write makes the next read a miss with new data', async () => {
    const userId = user();
    const list = `/v1/users/${userId}/memories`;
    const a = await add({ userId, content: 'first' });
    const byId = `/v1/memories/${a.id}`;

    // POST: the new memory is in the next list.
    let held = await warm(list);
    let heldById = await warm(byId);
    const b = await add({ userId, content: 'second' });
    let res = await get(list);
    afterWrite(res, held);
    assert.deepEqual(ids(res), [b.id, a.id]);

    // Batch POST.
    held = await warm(list);
    const batch = await t.call({
      method: 'POST',
      url: '/v1/memories/batch',
      headers: json,
      payload: { items: [{ userId, content: 'third' }] },
    });
    assert.equal(batch.statusCode, 201);
    const c: PublicMemory = batch.json().items[0];
    res = await get(list);
    afterWrite(res, held);
    assert.deepEqual(ids(res), [c.id, b.id, a.id]);

    // PATCH: new content by id and in the list.
    held = await warm(list);
    heldById = await warm(byId);
    const patched = await t.call({
      method: 'PATCH',
      url: byId,
      headers: json,
      payload: { content: 'first, changed' },
    });
    assert.equal(patched.statusCode, 200);
    res = await get(byId);
    afterWrite(res, heldById);
    assert.equal(res.json().content, 'first, changed');
    assert.equal(res.json().version, 2);
    res = await get(list);
    afterWrite(res, held);
    assert.equal(
      res.json().items.find((m: PublicMemory) => m.id === a.id).content,
      'first, changed',
    );

    // DELETE: gone by id and from the list.
    held = await warm(list);
    heldById = await warm(byId);
    assert.equal((await t.call({ method: 'DELETE', url: byId })).statusCode, 200);
    res = await get(byId);
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error.code, 'ENGRAM_MEMORY_NOT_FOUND');
    res = await get(list);
    afterWrite(res, held);
    assert.deepEqual(ids(res), [c.id, b.id]);

    // Restore: back by id and in the list.
    held = await warm(list);
    assert.equal((await t.call({ method: 'POST', url: `${byId}/restore` })).statusCode, 200);
    res = await get(byId);
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().content, 'first, changed');
    assert.equal(res.json().deletedAt, null);
    assert.equal(res.json().version, 4);
    res = await get(list);
    afterWrite(res, held);
    assert.deepEqual(ids(res), [c.id, b.id, a.id]);

    // Erase the user: everything gone.
    held = await warm(list);
    heldById = await warm(byId);
    assert.equal(heldById.json().version, 4);
    const erased = await t.call({ method: 'DELETE', url: `/v1/users/${userId}` });
    assert.equal(erased.statusCode, 200);
    assert.equal(erased.json().deleted, 3);
    res = await get(list);
    afterWrite(res, held);
    assert.deepEqual(res.json(), { items: [], nextCursor: null });
    assert.equal((await get(byId)).statusCode, 404);
    assert.equal((await get(`/v1/memories/${b.id}`)).statusCode, 404);
  });

  it('keeps one entry per distinct query: filters, limits and cursors never share', async () => {
    const userId = user();
    const m1 = await add({ userId, content: 'one', kind: 'fact', tags: ['x'] });
    clock.advance(1);
    const m2 = await add({ userId, content: 'two', kind: 'preference', tags: ['y'] });
    clock.advance(1);
    const m3 = await add({
      userId,
      content: 'three',
      kind: 'fact',
      tags: ['x', 'y'],
      pinned: true,
    });
    const base = `/v1/users/${userId}/memories`;
    const page1 = await get(`${base}?limit=1`);
    const cursor = page1.json().nextCursor as string;
    assert.equal(typeof cursor, 'string');
    const expected: Array<[string, string[]]> = [
      [base, [m3.id, m2.id, m1.id]],
      [`${base}?limit=1`, [m3.id]],
      [`${base}?limit=2`, [m3.id, m2.id]],
      [`${base}?limit=1&cursor=${cursor}`, [m2.id]],
      [`${base}?limit=2&cursor=${cursor}`, [m2.id, m1.id]],
      [`${base}?kind=fact`, [m3.id, m1.id]],
      [`${base}?kind=preference`, [m2.id]],
      [`${base}?tag=x`, [m3.id, m1.id]],
      [`${base}?tag=y`, [m3.id, m2.id]],
      [`${base}?tag=x&tag=y`, [m3.id]],
      [`${base}?pinned=true`, [m3.id]],
      [`${base}?pinned=false`, [m2.id, m1.id]],
      [`${base}?kind=fact&limit=1`, [m3.id]],
    ];
    const bodies = new Map<string, string>();
    // Twice: the second pass is answered from L1 and must still give each query its own answer.
    // (The first read of the default page may already be a hit: writes refresh it ahead; and
    // `limit=1` was read above for its cursor.)
    for (const pass of ['first', 'l1']) {
      for (const [url, want] of expected) {
        const res = await get(url);
        assert.equal(res.statusCode, 200, url);
        if (pass === 'l1') assert.equal(source(res), 'l1', url);
        else if (url !== base && url !== `${base}?limit=1`) assert.equal(source(res), 'store', url);
        assert.deepEqual(ids(res), want, url);
        if (pass === 'first') bodies.set(url, res.body);
        else assert.equal(res.body, bodies.get(url), url);
      }
    }
    // The same filters for another user are another entry.
    const otherUser = user();
    const res = await get(`/v1/users/${otherUser}/memories?kind=fact`);
    assert.equal(source(res), 'store');
    assert.deepEqual(ids(res), []);
  });

  it('drops an expired memory from a cached list and by id at its expiresAt', async () => {
    const userId = user();
    const keep = await add({ userId, content: 'stays' });
    clock.advance(1);
    const expiresAt = clock.now() + 60_000;
    const goes = await add({
      userId,
      content: 'goes',
      expiresAt: new Date(expiresAt).toISOString(),
    });
    const list = `/v1/users/${userId}/memories`;
    const byId = `/v1/memories/${goes.id}`;
    assert.deepEqual(ids(await warm(list)), [goes.id, keep.id]);
    assert.equal((await warm(byId)).json().content, 'goes');

    clock.time = expiresAt - 1;
    let res = await get(list);
    assert.equal(source(res), 'l1');
    assert.deepEqual(ids(res), [goes.id, keep.id]);
    assert.equal(source(await get(byId)), 'l1');

    // Well within the cache TTL (5 min), but the cached answers held a memory that expired.
    clock.time = expiresAt;
    res = await get(list);
    assert.equal(source(res), 'store');
    assert.deepEqual(ids(res), [keep.id]);
    res = await get(byId);
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error.code, 'ENGRAM_MEMORY_NOT_FOUND');
    // The answer without it is cached again.
    res = await get(list);
    assert.equal(source(res), 'l1');
    assert.deepEqual(ids(res), [keep.id]);
  });

  it('never gives another tenant a cached answer', async () => {
    const userId = user();
    const m = await add({ userId, content: 'acme secret' });
    const list = `/v1/users/${userId}/memories`;
    const byId = `/v1/memories/${m.id}`;
    await warm(list);
    await warm(byId);
    const asOther = { authorization: `Bearer ${t.otherKey}` };
    for (let i = 0; i < 2; i++) {
      const one = await get(byId, asOther);
      assert.equal(one.statusCode, 404);
      assert.equal(one.json().error.code, 'ENGRAM_MEMORY_NOT_FOUND');
      assert.doesNotMatch(one.body, /acme secret/);
      const page = await get(list, asOther);
      assert.equal(page.statusCode, 200);
      assert.deepEqual(page.json(), { items: [], nextCursor: null });
    }
    // The other tenant's write for the same user id changes neither acme's data nor its cache.
    const theirs = await t.call({
      method: 'POST',
      url: '/v1/memories',
      headers: { ...json, ...asOther },
      payload: { userId, content: 'other data' },
    });
    assert.equal(theirs.statusCode, 201);
    let res = await get(list);
    assert.equal(source(res), 'l1');
    assert.deepEqual(ids(res), [m.id]);
    res = await get(list, asOther);
    assert.deepEqual(ids(res), [theirs.json().id]);
    // And acme cannot read theirs by id, cached or not.
    assert.equal((await get(`/v1/memories/${theirs.json().id}`)).statusCode, 404);
    assert.equal((await get(`/v1/memories/${theirs.json().id}`, asOther)).statusCode, 200);
    assert.equal((await get(`/v1/memories/${theirs.json().id}`)).statusCode, 404);
  });
});
