import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FakeClock, type TestApp, testApp } from '../helpers/app.ts';
import { needs } from '../helpers/services.ts';
import { openPostgres, openSqlite, type TestStore } from '../helpers/stores.ts';

const json = { 'content-type': 'application/json' };
const DAY = 86_400_000;

const pgSkip = (await needs('postgres')).skip;

for (const [name, open, skip] of [
  ['sqlite', openSqlite, false],
  ['postgres', openPostgres, pgSkip],
] as const) {
  describe(`memory API over ${name}`, { skip }, () => {
    let t: TestApp;
    let ts: TestStore;
    const clock = new FakeClock();
    let n = 0;
    const user = (): string => `u${n++}`;

    const add = async (body: Record<string, unknown>, headers: Record<string, string> = {}) => {
      const res = await t.call({
        method: 'POST',
        url: '/v1/memories',
        headers: { ...json, ...headers },
        payload: body,
      });
      return { res, body: res.json() };
    };

    before(async () => {
      ts = await open();
      t = await testApp({ store: ts.store, clock });
    });
    after(async () => {
      await t?.close();
      await ts?.dispose();
    });

    it('adds, gets, updates with If-Match, deletes, restores, and keeps history', async () => {
      const userId = user();
      const created = await add({
        userId,
        content: 'Alice likes green tea',
        kind: 'preference',
        tags: ['drinks', 'drinks', 'tea'],
        metadata: { source: 'chat' },
        importance: 0.8,
      });
      assert.equal(created.res.statusCode, 201);
      const m = created.body;
      assert.equal(m.userId, userId);
      assert.deepEqual(m.tags, ['drinks', 'tea']);
      assert.equal(m.version, 1);
      assert.equal(m.createdAt, new Date(clock.now()).toISOString());

      const got = await t.call({ method: 'GET', url: `/v1/memories/${m.id}` });
      assert.equal(got.statusCode, 200);
      assert.deepEqual(got.json(), m);

      const stale = await t.call({
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        headers: { ...json, 'if-match': '"7"' },
        payload: { content: 'x' },
      });
      assert.equal(stale.statusCode, 412);
      assert.equal(stale.json().error.code, 'ENGRAM_VERSION_CONFLICT');
      assert.equal(stale.json().error.currentVersion, 1);

      clock.advance(1000);
      const patched = await t.call({
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        headers: { ...json, 'if-match': '"1"' },
        payload: { content: 'Alice loves green tea', pinned: true },
      });
      assert.equal(patched.statusCode, 200);
      assert.equal(patched.json().version, 2);
      assert.equal(patched.json().pinned, true);
      assert.equal(patched.json().importance, 0.8);

      const deleted = await t.call({ method: 'DELETE', url: `/v1/memories/${m.id}` });
      assert.equal(deleted.statusCode, 200);
      assert.notEqual(deleted.json().deletedAt, null);
      assert.equal((await t.call({ method: 'GET', url: `/v1/memories/${m.id}` })).statusCode, 404);
      assert.equal(
        (await t.call({ method: 'DELETE', url: `/v1/memories/${m.id}` })).statusCode,
        404,
      );

      const restored = await t.call({ method: 'POST', url: `/v1/memories/${m.id}/restore` });
      assert.equal(restored.statusCode, 200);
      assert.equal(restored.json().deletedAt, null);
      assert.equal(restored.json().content, 'Alice loves green tea');
      const again = await t.call({ method: 'POST', url: `/v1/memories/${m.id}/restore` });
      assert.equal(again.json().error.code, 'ENGRAM_MEMORY_NOT_DELETED');

      const history = await t.call({ method: 'GET', url: `/v1/memories/${m.id}/history` });
      assert.deepEqual(
        history.json().items.map((h: { version: number; op: string }) => [h.version, h.op]),
        [
          [1, 'create'],
          [2, 'update'],
          [3, 'delete'],
          [4, 'restore'],
        ],
      );
      assert.equal(history.json().items[0].memory.content, 'Alice likes green tea');
    });

    it('treats If-Match: * as any version, and refuses user ids . and ..', async () => {
      const { body: m } = await add({ userId: user(), content: 'any' });
      const res = await t.call({
        method: 'PATCH',
        url: `/v1/memories/${m.id}`,
        headers: { ...json, 'if-match': '*' },
        payload: { importance: 1 },
      });
      assert.equal(res.statusCode, 200);
      for (const userId of ['.', '..']) {
        const bad = await add({ userId, content: 'unreachable user' });
        assert.equal(bad.res.statusCode, 400);
        assert.equal(bad.body.error.details[0].path, '/body/userId');
      }
    });

    it('refuses a restore after the grace period, and purges the memory then', async () => {
      const { body: m } = await add({ userId: user(), content: 'short-lived' });
      await t.call({ method: 'DELETE', url: `/v1/memories/${m.id}` });
      clock.advance(31 * DAY);
      const late = await t.call({ method: 'POST', url: `/v1/memories/${m.id}/restore` });
      assert.equal(late.statusCode, 410);
      assert.equal(late.json().error.code, 'ENGRAM_RESTORE_WINDOW_EXPIRED');
      const purged = await t.ctx.purge.runOnce();
      assert.ok(purged.deleted >= 1);
      assert.equal(await t.ctx.store.getMemory('acme', m.id), null);
    });

    it('never returns an expired memory and purges it', async () => {
      const userId = user();
      const expiresAt = new Date(clock.now() + 60_000).toISOString();
      const { body: m } = await add({ userId, content: 'until soon', expiresAt });
      assert.equal(m.expiresAt, expiresAt);
      clock.advance(60_000);
      assert.equal((await t.call({ method: 'GET', url: `/v1/memories/${m.id}` })).statusCode, 404);
      const list = await t.call({ method: 'GET', url: `/v1/users/${userId}/memories` });
      assert.deepEqual(list.json().items, []);
      assert.ok((await t.ctx.purge.runOnce()).expired >= 1);
      assert.equal(await t.ctx.store.getMemory('acme', m.id), null);
    });

    it('imports history: createdAt in the past orders the listing', async () => {
      const userId = user();
      const now = clock.now();
      await add({ userId, content: 'new' });
      await add({ userId, content: 'old', createdAt: new Date(now - 10 * DAY).toISOString() });
      await add({ userId, content: 'middle', createdAt: new Date(now - DAY).toISOString() });
      const list = await t.call({ method: 'GET', url: `/v1/users/${userId}/memories` });
      assert.deepEqual(
        list.json().items.map((m: { content: string }) => m.content),
        ['new', 'middle', 'old'],
      );
    });

    it('pages with a cursor and filters', async () => {
      const userId = user();
      for (let i = 0; i < 7; i++) {
        await add({
          userId,
          content: `m${i}`,
          kind: i % 2 ? 'event' : 'fact',
          tags: [`t${i % 3}`],
        });
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const q: string = cursor ? `&cursor=${cursor}` : '';
        const res = await t.call({
          method: 'GET',
          url: `/v1/users/${userId}/memories?limit=3${q}`,
        });
        assert.equal(res.statusCode, 200);
        const page = res.json();
        assert.ok(page.items.length <= 3);
        seen.push(...page.items.map((m: { content: string }) => m.content));
        cursor = page.nextCursor;
      } while (cursor);
      assert.deepEqual(seen, ['m6', 'm5', 'm4', 'm3', 'm2', 'm1', 'm0']);
      const events = await t.call({
        method: 'GET',
        url: `/v1/users/${userId}/memories?kind=event&tag=t0`,
      });
      assert.deepEqual(
        events.json().items.map((m: { content: string }) => m.content),
        ['m3'],
      );
    });

    it('adds a batch in one transaction', async () => {
      const userId = user();
      const items = Array.from({ length: 20 }, (_, i) => ({ userId, content: `b${i}` }));
      const res = await t.call({
        method: 'POST',
        url: '/v1/memories/batch',
        headers: json,
        payload: { items },
      });
      assert.equal(res.statusCode, 201);
      assert.equal(res.json().items.length, 20);
      const stored = await t.ctx.store.listMemories('acme', {
        userId,
        limit: 100,
        now: clock.now(),
      });
      assert.equal(stored.length, 20);
    });

    it('replays an idempotent write instead of writing twice', async () => {
      const userId = user();
      const first = await add({ userId, content: 'once' }, { 'idempotency-key': `k-${userId}` });
      const second = await add({ userId, content: 'once' }, { 'idempotency-key': `k-${userId}` });
      assert.equal(second.res.statusCode, 201);
      assert.equal(second.res.headers['idempotent-replayed'], 'true');
      assert.deepEqual(second.body, first.body);
      const reused = await add({ userId, content: 'other' }, { 'idempotency-key': `k-${userId}` });
      assert.equal(reused.res.statusCode, 422);
      assert.equal(reused.body.error.code, 'ENGRAM_IDEMPOTENCY_KEY_REUSED');
      const stored = await t.ctx.store.listMemories('acme', {
        userId,
        limit: 10,
        now: clock.now(),
      });
      assert.equal(stored.length, 1);
    });

    it('creates one memory for 20 concurrent requests with one key', async () => {
      const userId = user();
      const results = await Promise.all(
        Array.from({ length: 20 }, () =>
          add({ userId, content: 'racy' }, { 'idempotency-key': `race-${userId}` }),
        ),
      );
      for (const r of results) assert.equal(r.res.statusCode, 201, r.res.body);
      assert.equal(new Set(results.map((r) => r.body.id)).size, 1);
      const stored = await t.ctx.store.listMemories('acme', {
        userId,
        limit: 10,
        now: clock.now(),
      });
      assert.equal(stored.length, 1);
    });

    it('replays an idempotent update without bumping the version twice', async () => {
      const { body: m } = await add({ userId: user(), content: 'v1' });
      const patch = () =>
        t.call({
          method: 'PATCH',
          url: `/v1/memories/${m.id}`,
          headers: { ...json, 'idempotency-key': `p-${m.id}` },
          payload: { content: 'v2' },
        });
      assert.equal((await patch()).json().version, 2);
      assert.equal((await patch()).json().version, 2);
      assert.equal((await t.ctx.store.getMemory('acme', m.id))?.version, 2);
    });

    it('exports a user as NDJSON, oldest first', async () => {
      const userId = user();
      const items = Array.from({ length: 1203 }, (_, i) => ({ userId, content: `e${i}` }));
      for (let i = 0; i < items.length; i += 1000) {
        await t.call({
          method: 'POST',
          url: '/v1/memories/batch',
          headers: json,
          payload: { items: items.slice(i, i + 1000) },
        });
      }
      const res = await t.call({ method: 'GET', url: `/v1/users/${userId}/export` });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /application\/x-ndjson/);
      const lines = res.body
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(lines.length, 1203);
      assert.equal(new Set(lines.map((l) => l.id)).size, 1203);
      assert.deepEqual(
        lines.map((l) => l.id),
        [...lines.map((l) => l.id)].sort(),
      );
    });

    it('erases a user with everything remembered about them', async () => {
      const userId = user();
      const bystander = user();
      await add({ userId, content: 'secret' }, { 'idempotency-key': `erase-${userId}` });
      await add({ userId: bystander, content: 'stays' });
      const res = await t.call({ method: 'DELETE', url: `/v1/users/${userId}` });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), { userId, deleted: 1 });
      const list = await t.call({ method: 'GET', url: `/v1/users/${userId}/memories` });
      assert.deepEqual(list.json().items, []);
      assert.equal(await t.ctx.store.getIdempotency('acme', `erase-${userId}`, clock.now()), null);
      const kept = await t.call({ method: 'GET', url: `/v1/users/${bystander}/memories` });
      assert.equal(kept.json().items.length, 1);
    });

    it("keeps tenants apart: another tenant's id is a 404", async () => {
      const userId = user();
      const { body: m } = await add({ userId, content: 'acme only' });
      const other = { authorization: `Bearer ${t.otherKey}` };
      const res = await t.call({ method: 'GET', url: `/v1/memories/${m.id}`, headers: other });
      assert.equal(res.statusCode, 404);
      assert.equal(res.json().error.code, 'ENGRAM_MEMORY_NOT_FOUND');
      const list = await t.call({
        method: 'GET',
        url: `/v1/users/${userId}/memories`,
        headers: other,
      });
      assert.deepEqual(list.json().items, []);
    });
  });
}
