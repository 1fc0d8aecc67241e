import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureBootstrapKey } from '../../src/auth/bootstrap-key.ts';
import type { SqliteStats } from '../../src/store/store.ts';
import { type TestApp, testApp } from '../helpers/app.ts';

describe('API keys', () => {
  let t: TestApp;
  before(async () => {
    t = await testApp();
  });
  after(async () => {
    await t.close();
  });

  it('requires a key on /v1 routes', async () => {
    for (const authorization of [undefined, 'Bearer nope', 'Basic abc', `Bearer ${t.key}x`]) {
      const headers = authorization === undefined ? {} : { authorization };
      const res = await t.app.inject({ method: 'GET', url: '/v1/users/u/memories', headers });
      assert.equal(res.statusCode, 401, String(authorization));
      assert.equal(res.json().error.code, 'ENGRAM_UNAUTHORIZED');
      assert.equal(res.json().error.requestId, res.headers['x-request-id']);
    }
  });

  it('stops accepting a revoked key', async () => {
    const created = await t.ctx.keys.create('acme', 'temp');
    const headers = { authorization: `Bearer ${created.key}` };
    const url = '/v1/users/u/memories';
    assert.equal((await t.app.inject({ method: 'GET', url, headers })).statusCode, 200);
    assert.equal(await t.ctx.keys.revoke(created.id), true);
    assert.equal((await t.app.inject({ method: 'GET', url, headers })).statusCode, 401);
  });

  it('stores only a hash of the secret', async () => {
    const created = await t.ctx.keys.create('acme');
    const row = await t.ctx.store.findApiKey(created.id);
    const secret = created.key.split('_')[2] ?? '';
    assert.ok(row);
    assert.equal(row.hash.length, 32);
    assert.ok(!row.hash.toString('latin1').includes(secret));
  });

  it('creates a bootstrap key once, in an owner-only file', async () => {
    const fresh = await testApp();
    try {
      // testApp already made keys; revoke them to look like a first start.
      for (const k of await fresh.ctx.keys.list()) await fresh.ctx.keys.revoke(k.id);
      const file = join(fresh.ctx.config.dataDir, 'api-key');
      const created = await ensureBootstrapKey(fresh.ctx.keys, file);
      assert.ok(created);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(await fresh.ctx.keys.authenticate(created.key), 'default');
      assert.equal(await ensureBootstrapKey(fresh.ctx.keys, file), null);
    } finally {
      await fresh.close();
    }
  });
});

describe('health and docs', () => {
  let t: TestApp;
  before(async () => {
    t = await testApp();
  });
  after(async () => {
    await t.close();
  });

  it('answers /livez and /readyz without a key', async () => {
    assert.equal((await t.app.inject({ url: '/livez' })).statusCode, 200);
    const ready = await t.app.inject({ url: '/readyz' });
    assert.deepEqual(ready.json(), { status: 'ok', store: 'sqlite' });
  });

  it('serves OpenAPI with every route, and the docs page', async () => {
    const spec = (await t.app.inject({ url: '/openapi.json' })).json();
    const routes = Object.entries(spec.paths).flatMap(([path, ops]) =>
      Object.keys(ops as object).map((m) => `${m.toUpperCase()} ${path}`),
    );
    for (const route of [
      'POST /v1/memories',
      'POST /v1/memories/batch',
      'GET /v1/memories/{id}',
      'PATCH /v1/memories/{id}',
      'DELETE /v1/memories/{id}',
      'POST /v1/memories/{id}/restore',
      'GET /v1/memories/{id}/history',
      'GET /v1/users/{userId}/memories',
      'POST /v1/users/{userId}/memories/search',
      'GET /v1/users/{userId}/export',
      'DELETE /v1/users/{userId}',
      'GET /v1/stats/cache',
      'GET /v1/stats/memory',
      'GET /v1/stats/store',
      'POST /v1/sessions',
      'POST /v1/sessions/{id}/messages',
      'GET /v1/sessions/{id}',
      'POST /v1/sessions/{id}/touch',
      'POST /v1/sessions/{id}/end',
      'GET /v1/users/{userId}/sessions',
      'GET /livez',
      'GET /readyz',
    ]) {
      assert.ok(routes.includes(route), `${route} missing from OpenAPI`);
    }
    const docs = await t.app.inject({ url: '/docs/' });
    assert.equal(docs.statusCode, 200);
    assert.match(docs.body, /swagger/i);
  });

  it('reports not ready with 503 when the store is gone', async () => {
    const broken = await testApp();
    await broken.ctx.store.close();
    const res = await broken.app.inject({ url: '/readyz' });
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().error.code, 'ENGRAM_NOT_READY');
    await broken.close();
  });

  it('reports where the memory is: resident, V8 heap, array buffers', async () => {
    const res = await t.call({ method: 'GET', url: '/v1/stats/memory' });
    assert.equal(res.statusCode, 200, res.body);
    const m = res.json() as {
      rss: number;
      heapTotal: number;
      heapUsed: number;
      external: number;
      arrayBuffers: number;
    };
    assert.deepEqual(Object.keys(m).sort(), [
      'arrayBuffers',
      'external',
      'heapTotal',
      'heapUsed',
      'rss',
    ]);
    for (const v of Object.values(m)) assert.ok(Number.isInteger(v) && v > 0);
    assert.ok(m.heapUsed <= m.heapTotal && m.heapTotal < m.rss && m.arrayBuffers <= m.external);
    const unauthorized = await t.app.inject({ url: '/v1/stats/memory' });
    assert.equal(unauthorized.statusCode, 401);
  });

  it("reports the store's state: the embedded store's log and checkpoints", async () => {
    await t.call({
      method: 'POST',
      url: '/v1/memories',
      payload: { userId: 'stats-user', content: 'a memory to write the log' },
    });
    const res = await t.call({ method: 'GET', url: '/v1/stats/store' });
    assert.equal(res.statusCode, 200, res.body);
    const s = res.json() as SqliteStats;
    assert.equal(s.dialect, 'sqlite');
    assert.ok(s.walBytes > 0 && s.walMaxBytes === 256 * 2 ** 20, res.body);
    assert.deepEqual(s.walWaits, { count: 0, ms: 0 });
    assert.ok(s.walFlushes.count >= 1 && s.walFlushes.maxMs <= s.walFlushes.ms, res.body);
    assert.ok(s.checkpoints !== null && s.checkpoints.failed === false, res.body);
    const unauthorized = await t.app.inject({ url: '/v1/stats/store' });
    assert.equal(unauthorized.statusCode, 401);
  });

  it('answers unknown routes with a catalog 404', async () => {
    const res = await t.app.inject({ url: '/v2/nothing' });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error.code, 'ENGRAM_ROUTE_NOT_FOUND');
  });
});
