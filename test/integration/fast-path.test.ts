import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestApp, testApp } from '../helpers/app.ts';

/** Headers that must be the same whichever path answered. */
const SAME = ['content-type', 'content-length', 'etag', 'cache-control', 'engram-cache'];

describe('fast path for warm reads', () => {
  let t: TestApp;
  let base: string;
  let auth: { authorization: string };
  let id: string;

  before(async () => {
    t = await testApp();
    auth = { authorization: `Bearer ${t.key}` };
    const created = await t.call({
      method: 'POST',
      url: '/v1/memories',
      headers: { 'content-type': 'application/json' },
      payload: { userId: 'fast', content: 'served before the framework' },
    });
    id = created.json().id;
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const address = t.app.server.address();
    assert.ok(address && typeof address === 'object');
    base = `http://127.0.0.1:${address.port}`;
    await t.ctx.warmer.idle();
  });
  after(async () => {
    await t.close();
  });

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { headers: { ...auth, ...headers } });

  for (const path of ['/v1/users/fast/memories?limit=20', '/v1/users/fast/memories', 'by id']) {
    it(`answers a warm ${path} exactly as the route does`, async () => {
      const url = path === 'by id' ? `/v1/memories/${id}` : path;
      await get(url); // fills (or is already warm)
      await get(url);
      const before = t.ctx.cache.stack.counters.fastPath;
      const fast = await get(url, { 'x-request-id': 'fast-1' });
      assert.equal(t.ctx.cache.stack.counters.fastPath, before + 1, 'answered by the fast path');
      // A non-matching If-None-Match sends the same read through Fastify, also from L1.
      const routed = await get(url, { 'if-none-match': '"other"' });
      assert.equal(t.ctx.cache.stack.counters.fastPath, before + 1, 'answered by the route');
      assert.equal(fast.status, 200);
      assert.equal(routed.status, 200);
      for (const h of SAME) assert.equal(fast.headers.get(h), routed.headers.get(h), h);
      assert.equal(fast.headers.get('x-request-id'), 'fast-1');
      assert.equal(await fast.text(), await routed.text());
    });
  }

  it('leaves everything else to the routes', async () => {
    const before = t.ctx.cache.stack.counters.fastPath;
    const cases: Array<[string, Record<string, string>, number]> = [
      ['/v1/users/fast/memories?limit=0', {}, 400],
      ['/v1/users/fast/memories?limit=501', {}, 400],
      ['/v1/users/fast/memories?limit=20&bogus=1', {}, 400],
      ['/v1/users/%66ast/memories', {}, 200],
      ['/v1/users/fast/memories', { authorization: 'Bearer egm_000000000000_nope' }, 401],
      ['/v1/memories/not-a-ulid', {}, 400],
      ['/v1/users/fast/memories?limit=20', { 'if-none-match': '*' }, 304],
    ];
    for (const [path, headers, status] of cases) {
      const res = await get(path, headers);
      assert.equal(res.status, status, path);
      await res.arrayBuffer();
    }
    assert.equal(t.ctx.cache.stack.counters.fastPath, before, 'none took the fast path');
  });

  it('never serves data made stale by a write', async () => {
    await get('/v1/users/fast/memories');
    await t.call({
      method: 'POST',
      url: '/v1/memories',
      headers: { 'content-type': 'application/json' },
      payload: { userId: 'fast', content: 'newer' },
    });
    const res = await get('/v1/users/fast/memories');
    const body = (await res.json()) as { items: Array<{ content: string }> };
    assert.equal(body.items[0]?.content, 'newer');
  });
});
