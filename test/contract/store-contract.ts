import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newMemoryId } from '../../src/memory/ids.ts';
import type { IdempotencyRecord, MemoryRow } from '../../src/memory/memory-types.ts';
import type {
  SessionActivity,
  SessionRow,
  TimeoutBasis,
  TimeoutModelRow,
} from '../../src/sessions/session-types.ts';
import { IdempotencyKeyTaken, PLANNED_QUERIES, type Store } from '../../src/store/store.ts';
import { memoryRow } from '../helpers/rows.ts';
import type { TestStore } from '../helpers/stores.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');
let seq = 0;

/** A memory row with sensible defaults; ids follow creation time. */
export function row(overrides: Partial<MemoryRow> = {}): MemoryRow {
  const createdAt = overrides.createdAt ?? T0 + seq++;
  return memoryRow({ content: `memory ${seq}`, ...overrides, createdAt });
}

function idem(overrides: Partial<IdempotencyRecord> = {}): IdempotencyRecord {
  return {
    tenant: 'acme',
    key: `k-${seq++}`,
    fingerprint: 'fp',
    userId: 'alice',
    status: 201,
    body: '{"ok":true}',
    createdAt: T0,
    expiresAt: T0 + 60_000,
    ...overrides,
  };
}

const ids = (rows: Array<{ id: string }>): string[] => rows.map((r) => r.id);

/** A timeout basis with every field set (fractions included) to check the JSON round trip. */
const LEARNED: TimeoutBasis = {
  source: 'learned',
  withinGaps: 12.75,
  betweenGaps: 3.5,
  quantile: 0.9,
  quantileMs: 123_456,
  margin: 1.5,
  clamped: 'max',
  betweenMedianMs: 86_400_000,
};
const DEFAULT_BASIS: TimeoutBasis = {
  source: 'default',
  withinGaps: 0,
  betweenGaps: 0,
  quantile: 0.9,
  quantileMs: null,
  margin: 2,
  clamped: null,
  betweenMedianMs: null,
};

/** An active session of `alice` at acme with a 30-minute timeout; ids follow creation time. */
function sessionRow(overrides: Partial<SessionRow> = {}): SessionRow {
  const createdAt = overrides.createdAt ?? T0 + seq++;
  return {
    tenant: 'acme',
    id: newMemoryId(createdAt, Number.MAX_SAFE_INTEGER),
    userId: 'alice',
    agentId: null,
    state: 'active',
    createdAt,
    lastActivityAt: createdAt,
    expiresAt: createdAt + 1_800_000,
    endedAt: null,
    timeoutMs: 1_800_000,
    timeoutBasis: DEFAULT_BASIS,
    messageCount: 0,
    summaryId: null,
    ...overrides,
  };
}

/** Activity of a session at `at`: a 10-minute timeout from then, adding `messages`. */
function activityAt(at: number, messages: number): SessionActivity {
  return { at, expiresAt: at + 600_000, timeoutMs: 600_000, timeoutBasis: LEARNED, messages };
}

/** The tables whose full scans the index test refuses. */
const WATCHED = 'memories|memory_history|user_activity|sessions|timeout_models';

/** A line of a query plan that reads a whole watched table. */
export function fullScans(plan: string): string[] {
  const sqlite = new RegExp(`\\bSCAN (${WATCHED})\\b`);
  const postgres = new RegExp(`Seq Scan on (${WATCHED})\\b`);
  return plan.split('\n').filter((line) => sqlite.test(line) || postgres.test(line));
}

/**
 * The behaviour every {@link Store} must have, run against each adapter. `open` returns a
 * freshly migrated, empty store.
 */
export function storeContract(
  name: string,
  open: () => Promise<TestStore>,
  skip: string | false = false,
): void {
  describe(`store contract: ${name}`, { skip }, () => {
    let ts: TestStore;
    let store: Store;
    let user = 0;
    // Each test works on its own user so that tests do not see each other's rows.
    const freshUser = (): string => `user-${user++}`;

    before(async () => {
      ts = await open();
      store = ts.store;
    });
    after(async () => {
      await ts?.dispose();
    });

    it('migrates idempotently and answers ping', async () => {
      assert.equal(await store.migrate(), 0);
      await store.ping();
    });

    it('reports its own state: the log and its checkpoints, or the pool', async () => {
      await store.insertMemories([row({ userId: freshUser() })]);
      const stats = store.stats();
      assert.equal(stats.dialect, store.dialect);
      if (stats.dialect === 'sqlite') {
        // The write started the checkpoint worker and went to the log.
        assert.ok(stats.walBytes > 0, `walBytes ${stats.walBytes}`);
        assert.equal(stats.walMaxBytes, 256 * 2 ** 20);
        assert.deepEqual(stats.walWaits, { count: 0, ms: 0 });
        // The write was acknowledged after a flush of the log (none for an in-memory file).
        const { count, ms, maxMs } = stats.walFlushes;
        assert.ok(count >= 1 && ms > 0 && maxMs > 0 && maxMs <= ms, JSON.stringify(stats));
        assert.ok(stats.checkpoints !== null && stats.checkpoints.failed === false);
      } else {
        const { total, idle, waiting, max } = stats.pool;
        assert.ok(
          total >= 1 && idle <= total && waiting >= 0 && max >= total,
          JSON.stringify(stats),
        );
      }
    });

    it('round-trips every field of a memory', async () => {
      const r = row({
        userId: freshUser(),
        agentId: 'agent-1',
        sessionId: 'sess-1',
        content: 'Ünïcødé 💾 and "quotes"',
        kind: 'preference',
        tags: ['a', 'b'],
        metadata: { n: 1, nested: { list: [1, 'two', null], ok: true } },
        importance: 0.25,
        pinned: true,
        expiresAt: T0 + 10 ** 10,
        accessCount: 3,
        lastAccessedAt: T0 + 5,
      });
      await store.insertMemories([r]);
      assert.deepEqual(await store.getMemory('acme', r.id), r);
    });

    it('scopes reads by tenant', async () => {
      const r = row({ userId: freshUser() });
      await store.insertMemories([r]);
      assert.equal(await store.getMemory('other', r.id), null);
      assert.deepEqual(
        await store.listMemories('other', { userId: r.userId, limit: 10, now: T0 }),
        [],
      );
    });

    it('lists newest first, hiding deleted and expired memories', async () => {
      const userId = freshUser();
      const live = [row({ userId }), row({ userId }), row({ userId })];
      const deleted = row({ userId, deletedAt: T0 });
      const expired = row({ userId, expiresAt: T0 + 100 });
      await store.insertMemories([...live, deleted, expired]);
      const listed = await store.listMemories('acme', { userId, limit: 10, now: T0 + 100 });
      assert.deepEqual(ids(listed), ids(live).reverse());
      const before = await store.listMemories('acme', { userId, limit: 10, now: T0 + 99 });
      assert.equal(before.length, 4, 'not yet expired memory is listed');
    });

    it('applies every filter and keyset pagination', async () => {
      const userId = freshUser();
      const a = row({ userId, kind: 'event', tags: ['x', 'y'], agentId: 'ag', pinned: true });
      const b = row({ userId, kind: 'event', tags: ['x'], sessionId: 's1' });
      const c = row({
        userId,
        kind: 'fact',
        tags: ['y'],
        sessionId: 's1',
        updatedAt: T0 + 10 ** 6,
      });
      await store.insertMemories([a, b, c]);
      const list = (f: object) =>
        store.listMemories('acme', { userId, limit: 10, now: T0, ...f }).then(ids);
      assert.deepEqual(await list({ kind: 'event' }), [b.id, a.id]);
      assert.deepEqual(await list({ tags: ['x'] }), [b.id, a.id]);
      assert.deepEqual(await list({ tags: ['x', 'y'] }), [a.id]);
      assert.deepEqual(await list({ agentId: 'ag' }), [a.id]);
      assert.deepEqual(await list({ sessionId: 's1' }), [c.id, b.id]);
      assert.deepEqual(await list({ pinned: true }), [a.id]);
      assert.deepEqual(await list({ pinned: false }), [c.id, b.id]);
      assert.deepEqual(await list({ createdFrom: b.createdAt }), [c.id, b.id]);
      assert.deepEqual(await list({ createdTo: b.createdAt }), [a.id]);
      assert.deepEqual(await list({ updatedFrom: T0 + 10 ** 6 }), [c.id]);
      assert.deepEqual(await list({ updatedTo: T0 + 10 ** 6 }), [b.id, a.id]);
      assert.deepEqual(await list({ limit: 1 }), [c.id]);
      assert.deepEqual(await list({ beforeId: c.id, limit: 1 }), [b.id]);
      assert.deepEqual(await list({ beforeId: b.id }), [a.id]);
    });

    it('inserts a batch all or nothing', async () => {
      const userId = freshUser();
      const first = row({ userId });
      // The same id twice violates the primary key in the middle of the batch.
      const batch = [row({ userId }), first, row({ userId }), { ...first }];
      await assert.rejects(store.insertMemories(batch));
      assert.deepEqual(await store.listMemories('acme', { userId, limit: 10, now: T0 }), []);
    });

    it('lets concurrent writes succeed or fail independently', async () => {
      const userId = freshUser();
      const taken = idem({ userId });
      await store.putIdempotency(taken);
      const rows = Array.from({ length: 20 }, () => row({ userId }));
      // Issued in one turn: SQLite commits them as one group, PostgreSQL one by one.
      const outcomes = await Promise.allSettled(
        rows.map((r, i) => store.insertMemories([r], i % 5 === 2 ? taken : undefined)),
      );
      outcomes.forEach((o, i) => {
        if (i % 5 === 2) {
          assert.equal(o.status, 'rejected');
          assert.ok((o as PromiseRejectedResult).reason instanceof IdempotencyKeyTaken);
        } else {
          assert.equal(o.status, 'fulfilled');
        }
      });
      const stored = await store.listMemories('acme', { userId, limit: 50, now: T0 });
      assert.deepEqual(new Set(ids(stored)), new Set(ids(rows.filter((_, i) => i % 5 !== 2))));
    });

    it('keeps a large batch invisible until it commits, and rolls all of it back', async () => {
      const userId = freshUser();
      const taken = idem({ userId });
      await store.putIdempotency(taken);
      const rows = Array.from({ length: 1000 }, () => row({ userId }));
      let settled = false;
      const outcome = store.insertMemories(rows, { ...taken, body: 'late' }).then(
        () => 'committed',
        (err: unknown) => err,
      );
      void outcome.then(() => {
        settled = true;
      });
      const seen = new Set<number>();
      while (!settled) {
        seen.add((await store.listMemories('acme', { userId, limit: 5, now: T0 })).length);
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.ok((await outcome) instanceof IdempotencyKeyTaken);
      assert.deepEqual([...seen], [0], 'a reader saw rows of an uncommitted batch');
      assert.equal(await store.getMemory('acme', rows[999]?.id ?? ''), null);
      const ok = Array.from({ length: 1000 }, () => row({ userId }));
      await store.insertMemories(ok);
      assert.equal((await store.exportMemories('acme', userId, null, 2000, T0)).length, 1000);
    });

    it('records a create history entry and mutates under the row lock', async () => {
      const r = row({ userId: freshUser() });
      await store.insertMemories([r]);
      const next = await store.mutateMemory('acme', r.id, (cur) => ({
        op: 'update',
        row: {
          ...cur,
          content: 'changed',
          tags: ['t'],
          version: cur.version + 1,
          updatedAt: T0 + 9,
        },
      }));
      assert.equal(next?.content, 'changed');
      assert.deepEqual(await store.getMemory('acme', r.id), next);
      const history = await store.listHistory('acme', r.id);
      assert.deepEqual(
        history.map((h) => [h.version, h.op, h.snapshot.content]),
        [
          [1, 'create', r.content],
          [2, 'update', 'changed'],
        ],
      );
      assert.equal(history[1]?.at, T0 + 9);
    });

    it('applies concurrent edits of one memory one after the other: none is lost', async () => {
      const r = row({ userId: freshUser() });
      await store.insertMemories([r]);
      // Each edit adds its tag to the tags it read: an edit made from a stale read would drop
      // another's tag (PostgreSQL: the row lock; SQLite: a compare-and-set on the version).
      await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          store.mutateMemory('acme', r.id, (cur) => ({
            op: 'update',
            row: { ...cur, tags: [...cur.tags, `t${i}`], version: cur.version + 1 },
          })),
        ),
      );
      const final = await store.getMemory('acme', r.id);
      assert.deepEqual([...(final?.tags ?? [])].sort(), [
        't0',
        't1',
        't2',
        't3',
        't4',
        't5',
        't6',
        't7',
      ]);
      assert.equal(final?.version, 9);
      const history = await store.listHistory('acme', r.id);
      assert.deepEqual(
        history.map((h) => h.version),
        [1, 2, 3, 4, 5, 6, 7, 8, 9],
      );
    });

    it('rolls a mutation back when the callback throws, and returns null when absent', async () => {
      const r = row({ userId: freshUser() });
      await store.insertMemories([r]);
      await assert.rejects(
        store.mutateMemory('acme', r.id, () => {
          throw new Error('abort');
        }),
        /abort/,
      );
      assert.deepEqual(await store.getMemory('acme', r.id), r);
      assert.equal(
        await store.mutateMemory('other', r.id, (cur) => ({ op: 'update', row: cur })),
        null,
      );
      assert.equal((await store.listHistory('acme', r.id)).length, 1);
    });

    it('commits the idempotency record with the write, and refuses a taken key', async () => {
      const userId = freshUser();
      const record = idem({ userId });
      const r1 = row({ userId });
      await store.insertMemories([r1], record);
      assert.deepEqual(await store.getIdempotency('acme', record.key, T0), record);
      const r2 = row({ userId });
      await assert.rejects(
        store.insertMemories([r2], { ...record, body: 'x' }),
        IdempotencyKeyTaken,
      );
      assert.equal(await store.getMemory('acme', r2.id), null, 'nothing written with a taken key');
      const r3 = row({ userId });
      await assert.rejects(
        store.mutateMemory(
          'acme',
          r1.id,
          (cur) => ({ op: 'update', row: { ...cur, content: 'no', version: 2 } }),
          () => record,
        ),
        IdempotencyKeyTaken,
      );
      assert.equal((await store.getMemory('acme', r1.id))?.content, r1.content);
      assert.equal(await store.getMemory('acme', r3.id), null);
      // Another tenant has its own key space.
      await store.putIdempotency({ ...record, tenant: 'other' });
    });

    it('hides expired idempotency records and lets them be replaced', async () => {
      const record = idem({ expiresAt: T0 + 10 });
      await store.putIdempotency(record);
      assert.equal(await store.getIdempotency('acme', record.key, T0 + 10), null);
      const replacement = { ...record, createdAt: T0 + 10, expiresAt: T0 + 20, body: 'new' };
      await store.putIdempotency(replacement);
      assert.equal((await store.getIdempotency('acme', record.key, T0 + 11))?.body, 'new');
      await assert.rejects(
        store.putIdempotency({ ...replacement, createdAt: T0 + 11 }),
        IdempotencyKeyTaken,
      );
    });

    it('exports a user in ascending chunks without deleted or expired memories', async () => {
      const userId = freshUser();
      const live = Array.from({ length: 5 }, () => row({ userId }));
      await store.insertMemories([
        ...live,
        row({ userId, deletedAt: T0 }),
        row({ userId, expiresAt: T0 }),
      ]);
      const first = await store.exportMemories('acme', userId, null, 3, T0);
      const second = await store.exportMemories('acme', userId, first.at(-1)?.id ?? null, 3, T0);
      assert.deepEqual([...ids(first), ...ids(second)], ids(live));
    });

    it('erases a user in chunks with history, leaving other users alone', async () => {
      const userId = freshUser();
      const bystander = row({ userId: freshUser() });
      const rows = Array.from({ length: 7 }, () => row({ userId }));
      await store.insertMemories([...rows, bystander]);
      await store.putIdempotency(idem({ userId }));
      assert.equal(await store.eraseUserChunk('acme', userId, 5), 5);
      assert.equal(await store.eraseUserChunk('acme', userId, 5), 2);
      assert.equal(await store.eraseUserChunk('acme', userId, 5), 0);
      assert.deepEqual(await store.listHistory('acme', rows[0]?.id ?? ''), []);
      assert.equal(await store.eraseUserRecords('acme', userId), 1);
      assert.ok(await store.getMemory('acme', bystander.id));
    });

    it('purges expired, long-deleted and stale idempotency rows in chunks', async () => {
      const userId = freshUser();
      const now = T0 + 10 ** 9;
      const expired = [row({ userId, expiresAt: now - 1 }), row({ userId, expiresAt: now })];
      const deleted = row({ userId, deletedAt: now - 1000 });
      const keep = [row({ userId, expiresAt: now + 1 }), row({ userId, deletedAt: now - 10 })];
      await store.insertMemories([...expired, deleted, ...keep]);
      assert.equal(await store.purgeExpired(now, 1), 1);
      assert.ok((await store.purgeExpired(now, 100)) >= 1);
      assert.ok((await store.purgeDeleted(now - 100, 100)) >= 1);
      for (const r of [...expired, deleted])
        assert.equal(await store.getMemory('acme', r.id), null);
      for (const r of keep) assert.ok(await store.getMemory('acme', r.id));
      await store.putIdempotency(idem({ expiresAt: T0 + 1 }));
      assert.ok((await store.purgeIdempotency(T0 + 1, 100)) >= 1);
    });

    it('merges activity and finds recent and usually-active users', async () => {
      const hours = (h: number, n: number) =>
        Array.from({ length: 24 }, (_, i) => (i === h ? n : 0));
      const a = freshUser();
      const b = freshUser();
      await store.recordActivity([
        { tenant: 'acme', userId: a, lastSeenAt: T0 + 100, hours: hours(7, 3) },
        { tenant: 'acme', userId: b, lastSeenAt: T0 + 200, hours: hours(9, 1) },
      ]);
      // b becomes a 7 o'clock user once its 7:00 count passes its 9:00 count.
      await store.recordActivity([
        { tenant: 'acme', userId: b, lastSeenAt: T0 + 150, hours: hours(7, 2) },
      ]);
      const recent = await store.recentlyActiveUsers(T0 + 50, 10);
      const mine = recent.filter((u) => u.userId === a || u.userId === b).map((u) => u.userId);
      assert.deepEqual(mine, [b, a], 'most recent first; last seen never moves back');
      const at7 = (await store.usersUsuallyActiveAt(7, T0, 100)).map((u) => u.userId);
      assert.ok(at7.includes(a) && at7.includes(b));
      assert.ok(!(await store.usersUsuallyActiveAt(9, T0, 100)).some((u) => u.userId === b));
      await store.eraseUserRecords('acme', a);
      assert.ok(!(await store.recentlyActiveUsers(T0, 100)).some((u) => u.userId === a));
    });

    it('stores API keys by id with their hash, and revokes them once', async () => {
      const key = {
        id: `k${seq++}`,
        tenant: 'acme',
        hash: Buffer.alloc(32, 7),
        label: 'test',
        createdAt: T0,
        revokedAt: null,
      };
      await store.insertApiKey(key);
      assert.deepEqual(await store.findApiKey(key.id), key);
      assert.ok((await store.listApiKeys()).some((k) => k.id === key.id));
      assert.equal(await store.revokeApiKey(key.id, T0 + 1), true);
      assert.equal(await store.revokeApiKey(key.id, T0 + 2), false);
      assert.equal((await store.findApiKey(key.id))?.revokedAt, T0 + 1);
      assert.equal(await store.findApiKey('missing'), null);
    });

    it('round-trips embeddings exactly and keeps them out of history', async () => {
      const userId = freshUser();
      // Values a decimal round trip could blur, in a view that starts 4 bytes into its buffer.
      const values = [0.1, -1 / 3, 3.4028234663852886e38, 1.401298464324817e-45, -2.5, 0, 1e-7];
      const backing = new Float32Array(values.length + 1);
      backing.set(values, 1);
      const embedding = backing.subarray(1);
      const withEmbedding = row({ userId, embedding });
      const without = row({ userId });
      await store.insertMemories([withEmbedding, without]);
      const stored = await store.getMemory('acme', withEmbedding.id);
      assert.ok(stored?.embedding instanceof Float32Array);
      assert.deepEqual([...stored.embedding], [...Float32Array.from(values)]);
      assert.deepEqual(stored, withEmbedding);
      assert.equal((await store.getMemory('acme', without.id))?.embedding, null);

      // A large batch takes another path (chunks on SQLite).
      const many = Array.from({ length: 150 }, (_, i) =>
        row({ userId, embedding: Float32Array.from([i, i / 7, -i]) }),
      );
      await store.insertMemories(many);
      const last = many[149] as MemoryRow;
      assert.deepEqual(await store.getMemory('acme', last.id), last);

      // An update that leaves the embedding keeps it; one that changes it stores the new one.
      const kept = await store.mutateMemory('acme', withEmbedding.id, (cur) => ({
        op: 'update',
        row: { ...cur, pinned: true, version: cur.version + 1, updatedAt: T0 + 1 },
      }));
      assert.deepEqual((await store.getMemory('acme', withEmbedding.id))?.embedding, embedding);
      assert.deepEqual(kept?.embedding, embedding);
      const changed = Float32Array.from([9.5, -0.125]);
      await store.mutateMemory('acme', withEmbedding.id, (cur) => ({
        op: 'update',
        row: { ...cur, embedding: changed, version: cur.version + 1, updatedAt: T0 + 2 },
      }));
      assert.deepEqual((await store.getMemory('acme', withEmbedding.id))?.embedding, changed);
      await store.mutateMemory('acme', without.id, (cur) => ({
        op: 'update',
        row: { ...cur, embedding: changed, version: cur.version + 1, updatedAt: T0 + 3 },
      }));
      assert.deepEqual((await store.getMemory('acme', without.id))?.embedding, changed);
      await store.mutateMemory('acme', without.id, (cur) => ({
        op: 'update',
        row: { ...cur, embedding: null, version: cur.version + 1, updatedAt: T0 + 4 },
      }));
      assert.equal((await store.getMemory('acme', without.id))?.embedding, null);

      const history = [
        ...(await store.listHistory('acme', withEmbedding.id)),
        ...(await store.listHistory('acme', last.id)),
      ];
      assert.equal(history.length, 4);
      for (const h of history) assert.equal(h.snapshot.embedding, null, `v${h.version} ${h.op}`);
      assert.deepEqual(history[0]?.snapshot, { ...withEmbedding, embedding: null });
    });

    it('counts live memories, leaving deleted and expired ones out', async () => {
      const userId = freshUser();
      assert.equal(await store.countLiveMemories('acme', userId, T0), 0);
      const live = [row({ userId }), row({ userId }), row({ userId, expiresAt: T0 + 1 })];
      await store.insertMemories([
        ...live,
        row({ userId, deletedAt: T0 }),
        row({ userId, expiresAt: T0 }),
        row({ userId: freshUser() }),
        row({ tenant: 'other', userId }),
      ]);
      assert.equal(await store.countLiveMemories('acme', userId, T0), 3);
      assert.equal(await store.countLiveMemories('acme', userId, T0 + 1), 2);
      await store.mutateMemory('acme', live[0]?.id ?? '', (cur) => ({
        op: 'delete',
        row: { ...cur, deletedAt: T0, version: cur.version + 1 },
      }));
      assert.equal(await store.countLiveMemories('acme', userId, T0), 2);
      assert.equal(await store.countLiveMemories('other', userId, T0), 1);
    });

    it('finds memories by word stem in content, tags and kind, best match first', async () => {
      const userId = freshUser();
      const runs = row({ userId, content: 'She runs along the river' });
      const running = row({ userId, content: 'Running shoes are by the door' });
      const apples = row({ userId, content: 'apple apple apple pie' });
      const apple = row({ userId, content: 'apple cherry grape kiwi lemon' });
      const tagged = row({ userId, content: 'Booked the flights', tags: ['travel', 'japan'] });
      const kind = row({ userId, content: 'Likes green tea', kind: 'preference' });
      const other = row({ userId, content: 'nothing to see here' });
      await store.insertMemories([runs, running, apples, apple, tagged, kind, other]);
      const search = async (terms: string[], limit = 10) =>
        (await store.searchText('acme', userId, terms, limit, T0)).map((c) => c.row.id);

      assert.deepEqual(new Set(await search(['running'])), new Set([runs.id, running.id]));
      assert.deepEqual(new Set(await search(['run'])), new Set([runs.id, running.id]));
      assert.deepEqual(await search(['apple']), [apples.id, apple.id], 'more matches rank first');
      assert.deepEqual(await search(['apple'], 1), [apples.id], 'limit');
      assert.deepEqual(await search(['travel']), [tagged.id], 'tags are searched');
      assert.deepEqual(await search(['preferences']), [kind.id], 'kind is searched');
      assert.deepEqual(new Set(await search(['kiwi', 'japan'])), new Set([apple.id, tagged.id]));
      assert.deepEqual(await search(['absent']), []);
      assert.deepEqual(await search([]), []);

      const candidates = await store.searchText('acme', userId, ['apple', 'tea'], 10, T0);
      assert.equal(candidates.length, 3);
      assert.deepEqual(
        candidates.find((c) => c.row.id === apples.id)?.row,
        apples,
        'candidates carry the whole row',
      );
      for (const c of candidates) assert.ok(Number.isFinite(c.score) && c.score > 0, `${c.score}`);
      const scores = candidates.map((c) => c.score);
      assert.deepEqual(
        scores,
        [...scores].sort((a, b) => b - a),
        'higher score first',
      );
    });

    it('searches one tenant and one user only', async () => {
      const userId = freshUser();
      const mine = row({ userId, content: 'zebra crossing' });
      // Tenant and user that run together into the same text as acme/<userId>.
      const tricky = [
        row({ tenant: 'other', userId, content: 'zebra crossing' }),
        row({ userId: freshUser(), content: 'zebra crossing' }),
        row({ tenant: 'acm', userId: `e${userId}`, content: 'zebra crossing' }),
        row({ tenant: 'acme', userId: `${userId}x`, content: 'zebra crossing' }),
      ];
      const unicodeUser = `${userId}-ünï👤`;
      const theirs = row({ userId: unicodeUser, content: 'zebra stripes' });
      await store.insertMemories([mine, ...tricky, theirs]);
      const found = await store.searchText('acme', userId, ['zebra'], 10, T0);
      assert.deepEqual(
        found.map((c) => c.row.id),
        [mine.id],
      );
      const unicode = await store.searchText('acme', unicodeUser, ['zebra'], 10, T0);
      assert.deepEqual(
        unicode.map((c) => c.row.id),
        [theirs.id],
      );
      assert.deepEqual(await store.searchText('nobody', userId, ['zebra'], 10, T0), []);
    });

    it('leaves deleted and expired memories out of search, and follows every change', async () => {
      const userId = freshUser();
      const live = row({ userId, content: 'walrus on the beach' });
      const deleted = row({ userId, content: 'walrus deleted', deletedAt: T0 });
      const expired = row({ userId, content: 'walrus expired', expiresAt: T0 });
      const later = row({ userId, content: 'walrus later', expiresAt: T0 + 1 });
      await store.insertMemories([live, deleted, expired, later]);
      const search = async (word: string, now = T0) =>
        new Set((await store.searchText('acme', userId, [word], 10, now)).map((c) => c.row.id));
      assert.deepEqual(await search('walrus'), new Set([live.id, later.id]));
      assert.deepEqual(await search('walrus', T0 + 1), new Set([live.id]));

      const edit = (id: string, change: Partial<MemoryRow>, op: 'update' | 'delete' | 'restore') =>
        store.mutateMemory('acme', id, (cur) => ({
          op,
          row: { ...cur, ...change, version: cur.version + 1 },
        }));
      await edit(live.id, { content: 'penguin on the ice', updatedAt: T0 + 5 }, 'update');
      assert.deepEqual(await search('walrus'), new Set([later.id]), 'old words are gone');
      assert.deepEqual(await search('penguins'), new Set([live.id]), 'new words are found');
      await edit(live.id, { tags: ['antarctica'] }, 'update');
      assert.deepEqual(await search('antarctica'), new Set([live.id]));

      await edit(live.id, { deletedAt: T0 + 6 }, 'delete');
      assert.deepEqual(await search('penguin'), new Set());
      // A change to a deleted memory keeps it out of the index.
      await edit(live.id, { content: 'penguin colony' }, 'update');
      assert.deepEqual(await search('colony'), new Set());
      await edit(live.id, { deletedAt: null }, 'restore');
      assert.deepEqual(await search('colony'), new Set([live.id]), 'a restore is searchable');
      await edit(deleted.id, { deletedAt: null }, 'restore');
      assert.deepEqual(await search('walrus'), new Set([deleted.id, later.id]));

      // Expired matches that score better than every live one do not take the live ones' places.
      const herons = Array.from({ length: 40 }, () =>
        row({ userId, content: 'heron heron heron', expiresAt: T0 }),
      );
      const liveHerons = Array.from({ length: 3 }, () =>
        row({ userId, content: 'a heron by the lake, standing in the reeds all morning' }),
      );
      await store.insertMemories([...herons, ...liveHerons]);
      assert.deepEqual(await search('heron'), new Set(liveHerons.map((r) => r.id)));

      // Hard deletes take memories out too.
      assert.equal(await store.eraseUserChunk('acme', userId, 100), 47);
      assert.deepEqual(await search('colony'), new Set());
      assert.deepEqual(await search('walrus'), new Set());
    });

    it('takes any text as search terms without failing', async () => {
      const userId = freshUser();
      const target = row({ userId, content: `quokka 日本語 שלום café ${'x'.repeat(500)}` });
      await store.insertMemories([target]);
      const hostile = [
        '"',
        '""',
        '"quokka',
        '*',
        'quok*',
        'NEAR(',
        'NEAR',
        'AND',
        'OR',
        'NOT',
        'or',
        '-',
        '-quokka',
        '(',
        ')',
        "'",
        "'; DROP TABLE memories; --",
        '\\',
        ':',
        'body:',
        'scope : x',
        '^',
        '{scope}',
        '&|!<->',
        '',
        ' ',
        '😀',
        '👩‍👩‍👧',
        '日本語',
        'שלום',
        '\u202e',
        'x'.repeat(500),
        '\u0000',
        'a\u0000b',
      ];
      for (const term of hostile) {
        const found = await store.searchText('acme', userId, [term], 10, T0);
        assert.ok(Array.isArray(found), JSON.stringify(term));
        for (const c of found) assert.equal(c.row.userId, userId);
      }
      const all = await store.searchText('acme', userId, hostile, 10, T0);
      assert.ok(all.length <= 1);
      const withWord = await store.searchText('acme', userId, [...hostile, 'quokka'], 10, T0);
      assert.deepEqual(
        withWord.map((c) => c.row.id),
        [target.id],
      );
      assert.deepEqual(await store.searchText('acme', userId, [''], 10, T0), []);
      assert.deepEqual(await store.searchText('acme', userId, ['""', '"', '*'], 10, T0), []);
      assert.deepEqual(await store.searchText('acme', userId, ['quokka'], 0, T0), []);
    });

    it('records accesses without editing the memory', async () => {
      const userId = freshUser();
      const r = row({ userId, content: 'capybara', lastAccessedAt: null });
      const seen = row({ userId, accessCount: 4, lastAccessedAt: T0 + 500 });
      await store.insertMemories([r, seen]);
      await store.recordAccess([
        { tenant: 'acme', id: r.id, count: 2, at: T0 + 100 },
        { tenant: 'acme', id: seen.id, count: 1, at: T0 + 100 },
        { tenant: 'acme', id: 'missing', count: 1, at: T0 + 100 },
        { tenant: 'other', id: r.id, count: 1, at: T0 + 900 },
      ]);
      await store.recordAccess([
        { tenant: 'acme', id: r.id, count: 3, at: T0 + 50 },
        { tenant: 'acme', id: r.id, count: 1, at: T0 + 70 },
      ]);
      await store.recordAccess([]);
      const after = await store.getMemory('acme', r.id);
      assert.deepEqual(after, { ...r, accessCount: 6, lastAccessedAt: T0 + 100 });
      assert.deepEqual(await store.getMemory('acme', seen.id), {
        ...seen,
        accessCount: 5,
        lastAccessedAt: T0 + 500,
      });
      assert.deepEqual(
        (await store.listHistory('acme', r.id)).map((h) => [h.version, h.op, h.snapshot]),
        [[1, 'create', { ...r, embedding: null }]],
      );
      const found = await store.searchText('acme', userId, ['capybara'], 10, T0);
      assert.deepEqual(found[0]?.row, after, 'still searchable');
    });

    it('records accesses of many memories in one call', async () => {
      const userId = freshUser();
      const rows = Array.from({ length: 600 }, () => row({ userId }));
      await store.insertMemories(rows);
      const deltas = rows.flatMap((r, i) => [
        { tenant: 'acme', id: r.id, count: 1, at: T0 + i },
        { tenant: 'acme', id: `missing-${i}`, count: 1, at: T0 + i },
      ]);
      // Reversed, twice over: the store merges and orders them.
      await store.recordAccess([...deltas, ...deltas].reverse());
      const stored = await store.exportMemories('acme', userId, null, 1000, T0);
      assert.equal(stored.length, 600);
      stored.forEach((s, i) => {
        assert.equal(s.accessCount, 2);
        assert.equal(s.lastAccessedAt, T0 + i);
        assert.equal(s.version, 1);
      });
    });

    it('adds up concurrent access records of the same memories without deadlock', async () => {
      const userId = freshUser();
      const rows = Array.from({ length: 300 }, () => row({ userId }));
      await store.insertMemories(rows);
      // Each call lists the same memories in another order, starting elsewhere (PostgreSQL:
      // concurrent clients, which would deadlock if each locked rows in its own order).
      const calls = Array.from({ length: 8 }, (_, k) => {
        const order = [...rows.slice(k * 37), ...rows.slice(0, k * 37)];
        if (k % 2 === 1) order.reverse();
        return order.map((r) => ({ tenant: 'acme', id: r.id, count: 1, at: T0 + k }));
      });
      await Promise.all(calls.map((deltas) => store.recordAccess(deltas)));
      for (const s of await store.exportMemories('acme', userId, null, 1000, T0)) {
        assert.equal(s.accessCount, 8);
        assert.equal(s.lastAccessedAt, T0 + 7);
      }
    });

    it('lists the most important live memories of a user, newest first on ties', async () => {
      const userId = freshUser();
      const top = row({ userId, importance: 0.9 });
      const tieOld = row({ userId, importance: 0.5 });
      const tieNew = row({ userId, importance: 0.5 });
      const low = row({ userId, importance: 0.1 });
      const soonExpired = row({ userId, importance: 0.7, expiresAt: T0 + 10 });
      await store.insertMemories([
        low,
        tieOld,
        top,
        tieNew,
        soonExpired,
        row({ userId, importance: 1, deletedAt: T0 }),
        row({ userId, importance: 1, expiresAt: T0 }),
        row({ userId: freshUser(), importance: 1 }),
        row({ tenant: 'other', userId, importance: 1 }),
      ]);
      const top5 = await store.topByImportance('acme', userId, 10, T0);
      assert.deepEqual(ids(top5), ids([top, soonExpired, tieNew, tieOld, low]));
      assert.deepEqual(top5[0], top, 'whole rows');
      assert.deepEqual(ids(await store.topByImportance('acme', userId, 2, T0)), [
        top.id,
        soonExpired.id,
      ]);
      assert.deepEqual(ids(await store.topByImportance('acme', userId, 10, T0 + 10)), [
        top.id,
        tieNew.id,
        tieOld.id,
        low.id,
      ]);
      assert.deepEqual(await store.topByImportance('acme', userId, 0, T0), []);
      assert.deepEqual(await store.topByImportance('acme', freshUser(), 10, T0), []);
      await store.mutateMemory('acme', top.id, (cur) => ({
        op: 'delete',
        row: { ...cur, deletedAt: T0, version: cur.version + 1 },
      }));
      assert.equal((await store.topByImportance('acme', userId, 1, T0))[0]?.id, soonExpired.id);
    });

    it('round-trips every field of a session', async () => {
      const userId = freshUser();
      const active = sessionRow({ userId, agentId: 'agent-7', timeoutBasis: LEARNED });
      const ended = sessionRow({
        userId,
        state: 'ended',
        lastActivityAt: T0 + 500,
        expiresAt: T0 + 900,
        endedAt: T0 + 900,
        timeoutMs: 1_234_567,
        messageCount: 42,
        summaryId: newMemoryId(T0 + 900, Number.MAX_SAFE_INTEGER),
      });
      await store.insertSession(active);
      await store.insertSession(ended);
      assert.deepEqual(await store.getSession('acme', active.id), active);
      assert.deepEqual(await store.getSession('acme', ended.id), ended);
      assert.deepEqual((await store.getSession('acme', active.id))?.timeoutBasis, LEARNED);
      assert.equal(await store.getSession('other', active.id), null, 'scoped by tenant');
      assert.equal(await store.getSession('acme', 'missing'), null);
      await assert.rejects(store.insertSession(active), 'the id is taken');
      await store.insertSession({ ...active, tenant: 'other' });
      assert.equal((await store.getSession('other', active.id))?.tenant, 'other');
    });

    it("lists a user's sessions newest first, in pages, and no one else's", async () => {
      const userId = freshUser();
      const mine = Array.from({ length: 5 }, () => sessionRow({ userId }));
      const theirs = [
        sessionRow({ userId: freshUser() }),
        sessionRow({ tenant: 'other', userId }),
        sessionRow({ userId: `${userId}x` }),
      ];
      for (const s of [...theirs, ...mine.slice().reverse()]) await store.insertSession(s);
      // Ended sessions are listed too.
      await store.endSession('acme', mine[1]?.id ?? '', {
        state: 'ended',
        endedAt: T0 + 1,
        summary: null,
        expectedMessages: 0,
      });
      const newest = ids(mine).reverse();
      const list = (beforeId: string | null, limit: number) =>
        store.listSessions('acme', userId, beforeId, limit).then(ids);
      assert.deepEqual(await list(null, 10), newest);
      assert.deepEqual(await list(null, 2), newest.slice(0, 2));
      assert.deepEqual(await list(newest[1] ?? '', 2), newest.slice(2, 4));
      assert.deepEqual(await list(newest[3] ?? '', 2), newest.slice(4));
      assert.deepEqual(await list(newest[4] ?? '', 2), []);
      const listed = await store.listSessions('acme', userId, null, 10);
      assert.deepEqual(listed[3], {
        ...mine[1],
        state: 'ended',
        endedAt: T0 + 1,
        expiresAt: T0 + 1,
      });
      assert.deepEqual(await store.listSessions('acme', freshUser(), null, 10), []);
      assert.deepEqual(ids(await store.listSessions('other', userId, null, 10)), [theirs[1]?.id]);
    });

    it('touches an active session, adding messages, and leaves an ended one alone', async () => {
      const userId = freshUser();
      const s = sessionRow({ userId, messageCount: 1 });
      const gone = sessionRow({ userId });
      await store.insertSession(s);
      await store.insertSession(gone);
      const activity = (at: number, messages: number): SessionActivity => ({
        at,
        expiresAt: at + 600_000,
        timeoutMs: 600_000,
        timeoutBasis: LEARNED,
        messages,
      });

      const touched = await store.touchSession('acme', s.id, activity(T0 + 1000, 2));
      const expected: SessionRow = {
        ...s,
        lastActivityAt: T0 + 1000,
        expiresAt: T0 + 601_000,
        timeoutMs: 600_000,
        timeoutBasis: LEARNED,
        messageCount: 3,
      };
      assert.deepEqual(touched, expected);
      assert.deepEqual(await store.getSession('acme', s.id), expected);
      const idle = await store.touchSession('acme', s.id, {
        ...activity(T0 + 2000, 0),
        timeoutBasis: DEFAULT_BASIS,
      });
      assert.equal(idle?.messageCount, 3, 'a touch adds no message');
      assert.equal(idle?.lastActivityAt, T0 + 2000);
      assert.deepEqual(idle?.timeoutBasis, DEFAULT_BASIS);
      // Concurrent appends all count.
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          store.touchSession('acme', s.id, activity(T0 + 3000 + i, 1)),
        ),
      );
      assert.equal((await store.getSession('acme', s.id))?.messageCount, 13);

      const ended = await store.endSession('acme', gone.id, {
        state: 'expired',
        endedAt: T0 + 50,
        summary: null,
        expectedMessages: 0,
      });
      assert.ok(ended);
      assert.equal(await store.touchSession('acme', gone.id, activity(T0 + 5000, 4)), null);
      assert.deepEqual(await store.getSession('acme', gone.id), ended, 'nothing changed');
      assert.equal(await store.touchSession('acme', 'missing', activity(T0, 1)), null);
      assert.equal(await store.touchSession('other', s.id, activity(T0, 1)), null);
      assert.equal((await store.getSession('acme', s.id))?.messageCount, 13);
    });

    it('ends a session once: one of two concurrent enders wins, the other writes nothing', async () => {
      const userId = freshUser();
      const s = sessionRow({ userId, agentId: 'ag', messageCount: 7 });
      await store.insertSession(s);
      const summaries = [0, 1].map((i) =>
        row({
          userId,
          sessionId: s.id,
          kind: 'summary',
          content: `Session summary ${i}: discussed the platypus migration`,
          tags: ['session-summary'],
          createdAt: T0 + 10_000 + i,
        }),
      );
      const outcomes = await Promise.all(
        summaries.map((summary, i) =>
          store.endSession('acme', s.id, {
            state: 'ended',
            endedAt: T0 + 20_000 + i,
            summary,
            expectedMessages: 7,
          }),
        ),
      );
      const winners = outcomes.flatMap((o, i) => (o ? [i] : []));
      assert.equal(winners.length, 1, 'exactly one caller ends the session');
      const w = winners[0] ?? 0;
      const winner = summaries[w] as MemoryRow;
      const loser = summaries[1 - w] as MemoryRow;
      const expected: SessionRow = {
        ...s,
        state: 'ended',
        endedAt: T0 + 20_000 + w,
        expiresAt: T0 + 20_000 + w,
        summaryId: winner.id,
      };
      assert.deepEqual(outcomes[w], expected);
      assert.deepEqual(await store.getSession('acme', s.id), expected);

      assert.deepEqual(await store.getMemory('acme', winner.id), winner);
      assert.deepEqual(
        (await store.listHistory('acme', winner.id)).map((h) => [h.version, h.op, h.snapshot]),
        [[1, 'create', { ...winner, embedding: null }]],
      );
      const found = await store.searchText('acme', userId, ['platypus'], 10, T0);
      assert.deepEqual(ids(found.map((c) => c.row)), [winner.id], 'the summary is searchable');
      assert.equal(await store.getMemory('acme', loser.id), null, 'the loser wrote no memory');
      assert.deepEqual(await store.listHistory('acme', loser.id), []);

      // A later end finds it ended and changes nothing.
      const late = row({ userId });
      assert.equal(
        await store.endSession('acme', s.id, {
          state: 'expired',
          endedAt: T0 + 9,
          summary: late,
          expectedMessages: 7,
        }),
        null,
      );
      assert.equal(await store.getMemory('acme', late.id), null);
      assert.deepEqual(await store.getSession('acme', s.id), expected);
      assert.equal(
        await store.endSession('acme', 'missing', {
          state: 'ended',
          endedAt: T0,
          summary: null,
          expectedMessages: 0,
        }),
        null,
      );
    });

    it('ends a session without a summary, and rolls the end back when the summary fails', async () => {
      const userId = freshUser();
      const plain = sessionRow({ userId });
      const failing = sessionRow({ userId });
      await store.insertSession(plain);
      await store.insertSession(failing);
      const ended = await store.endSession('acme', plain.id, {
        state: 'expired',
        endedAt: T0 + 77,
        summary: null,
        expectedMessages: 0,
      });
      assert.deepEqual(ended, { ...plain, state: 'expired', endedAt: T0 + 77, expiresAt: T0 + 77 });

      // A summary whose id is taken fails on the primary key: the session stays active.
      const existing = row({ userId });
      await store.insertMemories([existing]);
      await assert.rejects(
        store.endSession('acme', failing.id, {
          state: 'ended',
          endedAt: T0 + 88,
          summary: { ...existing, content: 'duplicate' },
          expectedMessages: 0,
        }),
      );
      assert.deepEqual(await store.getSession('acme', failing.id), failing);
      assert.deepEqual(await store.getMemory('acme', existing.id), existing);
      assert.equal((await store.listHistory('acme', existing.id)).length, 1);
    });

    it('appends messages to an active session: rows, history and the session move in one step', async () => {
      const userId = freshUser();
      const s = sessionRow({ userId, messageCount: 2 });
      await store.insertSession(s);
      const message = (content: string, role: string): MemoryRow =>
        row({ userId, sessionId: s.id, kind: 'message', metadata: { role }, content });
      const rows = [
        message('the wombat burrow is flooded', 'user'),
        message('move the wombat to higher ground', 'assistant'),
        message('done', 'user'),
      ];

      const moved = await store.appendSessionMessages(
        'acme',
        s.id,
        rows,
        activityAt(T0 + 5000, rows.length),
      );
      const expected: SessionRow = {
        ...s,
        lastActivityAt: T0 + 5000,
        expiresAt: T0 + 605_000,
        timeoutMs: 600_000,
        timeoutBasis: LEARNED,
        messageCount: 5,
      };
      assert.deepEqual(moved, expected);
      assert.deepEqual(await store.getSession('acme', s.id), expected);
      for (const r of rows) {
        assert.deepEqual(await store.getMemory('acme', r.id), r);
        assert.deepEqual(
          (await store.listHistory('acme', r.id)).map((h) => [h.version, h.op, h.snapshot]),
          [[1, 'create', { ...r, embedding: null }]],
        );
      }
      const listed = await store.listMemories('acme', {
        userId,
        sessionId: s.id,
        kind: 'message',
        limit: 10,
        now: T0,
      });
      assert.deepEqual(ids(listed), ids(rows).reverse());
      const found = await store.searchText('acme', userId, ['wombat'], 10, T0);
      assert.deepEqual(ids(found.map((c) => c.row)).sort(), ids(rows.slice(0, 2)).sort());

      // A row that fails (its id is taken) rolls the whole append back: the session stays.
      const fresh = message('never stored', 'user');
      await assert.rejects(
        store.appendSessionMessages(
          'acme',
          s.id,
          [fresh, { ...(rows[0] as MemoryRow), content: 'duplicate' }],
          activityAt(T0 + 6000, 2),
        ),
      );
      assert.deepEqual(await store.getSession('acme', s.id), expected);
      assert.equal(await store.getMemory('acme', fresh.id), null);
      assert.deepEqual(await store.getMemory('acme', rows[0]?.id ?? ''), rows[0]);
    });

    it('appends nothing to an ended or missing session', async () => {
      const userId = freshUser();
      const s = sessionRow({ userId, messageCount: 1 });
      await store.insertSession(s);
      const ended = await store.endSession('acme', s.id, {
        state: 'ended',
        endedAt: T0 + 10,
        summary: null,
        expectedMessages: 1,
      });
      assert.ok(ended);
      const late = row({ userId, sessionId: s.id, kind: 'message', content: 'too late' });
      const key = idem({ userId });
      assert.equal(
        await store.appendSessionMessages('acme', s.id, [late], activityAt(T0 + 20, 1), key),
        null,
      );
      assert.deepEqual(await store.getSession('acme', s.id), ended, 'nothing changed');
      assert.equal(await store.getMemory('acme', late.id), null);
      assert.deepEqual(await store.listHistory('acme', late.id), []);
      assert.equal(await store.getIdempotency('acme', key.key, T0), null, 'no key stored');
      assert.equal(
        await store.appendSessionMessages('acme', 'missing', [late], activityAt(T0, 1)),
        null,
      );
      assert.equal(
        await store.appendSessionMessages('other', s.id, [late], activityAt(T0, 1)),
        null,
        'scoped by tenant',
      );
      assert.equal(await store.getMemory('acme', late.id), null);
      assert.equal(await store.getMemory('other', late.id), null);
    });

    it('stores the idempotency record with an append, and refuses a taken key writing nothing', async () => {
      const userId = freshUser();
      const s = sessionRow({ userId });
      await store.insertSession(s);
      const message = (content: string): MemoryRow =>
        row({ userId, sessionId: s.id, kind: 'message', content });
      const key = idem({ userId });
      const first = [message('first')];
      const moved = await store.appendSessionMessages(
        'acme',
        s.id,
        first,
        activityAt(T0 + 100, 1),
        key,
      );
      assert.equal(moved?.messageCount, 1);
      assert.deepEqual(await store.getIdempotency('acme', key.key, T0), key);
      assert.deepEqual(await store.getMemory('acme', first[0]?.id ?? ''), first[0]);

      const again = [message('second'), message('third')];
      await assert.rejects(
        store.appendSessionMessages('acme', s.id, again, activityAt(T0 + 200, 2), {
          ...key,
          fingerprint: 'other',
        }),
        IdempotencyKeyTaken,
      );
      assert.deepEqual(await store.getSession('acme', s.id), moved, 'the session did not move');
      for (const r of again) {
        assert.equal(await store.getMemory('acme', r.id), null);
        assert.deepEqual(await store.listHistory('acme', r.id), []);
      }
      assert.deepEqual(await store.getIdempotency('acme', key.key, T0), key, 'the first record');
    });

    it('never ends a session without the messages appended concurrently', async () => {
      const userId = freshUser();
      const outcomes = { appended: 0, ended: 0 };
      for (let round = 0; round < 20; round++) {
        const s = sessionRow({ userId });
        await store.insertSession(s);
        const message = (content: string): MemoryRow =>
          row({ userId, sessionId: s.id, kind: 'message', content });
        await store.appendSessionMessages('acme', s.id, [message('hello')], activityAt(T0, 1));
        // The ender reads the session (and would summarize its messages) before the append.
        const read = await store.getSession('acme', s.id);
        const expectedMessages = read?.messageCount ?? -1;
        assert.equal(expectedMessages, 1);
        const added = [message(`round ${round} a`), message(`round ${round} b`)];
        const summary = row({ userId, sessionId: s.id, kind: 'summary', content: 'summary' });
        const append = () =>
          store.appendSessionMessages('acme', s.id, added, activityAt(T0 + 1000, added.length));
        const end = () =>
          store.endSession('acme', s.id, {
            state: 'ended',
            endedAt: T0 + 2000,
            summary,
            expectedMessages,
          });
        // Both orders of issue, so that either may reach the store first.
        const [appended, ended] =
          round % 2 === 0
            ? await Promise.all([append(), end()])
            : await Promise.all([end(), append()]).then(([e, a]) => [a, e] as const);
        assert.ok(!(appended && ended), `round ${round}: the end missed an appended message`);
        assert.ok(appended || ended, `round ${round}: one of the two succeeds`);
        const after = await store.getSession('acme', s.id);
        if (ended) {
          outcomes.ended++;
          assert.deepEqual(after, ended);
          assert.equal(after?.messageCount, 1);
          assert.deepEqual(await store.getMemory('acme', summary.id), summary);
          for (const r of added) assert.equal(await store.getMemory('acme', r.id), null);
        } else {
          outcomes.appended++;
          assert.deepEqual(after, appended);
          assert.equal(after?.state, 'active');
          assert.equal(after?.messageCount, 3);
          assert.equal(await store.getMemory('acme', summary.id), null, 'no summary written');
          for (const r of added) assert.deepEqual(await store.getMemory('acme', r.id), r);
          // The ender reads again and retries with the count it now summarizes.
          const retried = await store.endSession('acme', s.id, {
            state: 'ended',
            endedAt: T0 + 3000,
            summary,
            expectedMessages: 3,
          });
          assert.equal(retried?.state, 'ended');
          assert.equal(retried?.messageCount, 3);
        }
      }
      assert.equal(outcomes.appended + outcomes.ended, 20);
    });

    it('refuses an end whose message count is not the current one, writing no summary', async () => {
      const userId = freshUser();
      const s = sessionRow({ userId, messageCount: 3 });
      await store.insertSession(s);
      const summary = row({ userId, sessionId: s.id, kind: 'summary', content: 'summary' });
      for (const expectedMessages of [2, 4, 0]) {
        assert.equal(
          await store.endSession('acme', s.id, {
            state: 'ended',
            endedAt: T0 + 10,
            summary,
            expectedMessages,
          }),
          null,
          `expected ${expectedMessages}`,
        );
        assert.deepEqual(await store.getSession('acme', s.id), s, 'the session stays active');
        assert.equal(await store.getMemory('acme', summary.id), null, 'no summary written');
        assert.deepEqual(await store.listHistory('acme', summary.id), []);
      }
      const ended = await store.endSession('acme', s.id, {
        state: 'expired',
        endedAt: T0 + 20,
        summary,
        expectedMessages: 3,
      });
      assert.deepEqual(ended, {
        ...s,
        state: 'expired',
        endedAt: T0 + 20,
        expiresAt: T0 + 20,
        summaryId: summary.id,
      });
      assert.deepEqual(await store.getMemory('acme', summary.id), summary);
    });

    it('finds due sessions of every tenant, soonest first, and the next expiry', async () => {
      // Due sessions are global: a store of its own, so that other tests' sessions stay out.
      const own = await open();
      try {
        const db = own.store;
        assert.equal(await db.nextSessionExpiry(), null);
        assert.deepEqual(await db.dueSessions(T0 + 10 ** 9, 10), []);
        const at = (expiresAt: number, fields: Partial<SessionRow> = {}) =>
          sessionRow({ expiresAt, ...fields });
        const a1 = at(T0 + 30);
        const b1 = at(T0 + 10, { tenant: 'other', userId: 'bob' });
        const a2 = at(T0 + 20, { userId: 'carol' });
        const later = at(T0 + 100);
        const ended = at(T0 + 5, { state: 'ended', endedAt: T0 + 5 });
        const expired = at(T0 + 1, { state: 'expired', endedAt: T0 + 1 });
        for (const s of [a1, b1, a2, later, ended, expired]) await db.insertSession(s);
        const key = (s: SessionRow) => ({ tenant: s.tenant, id: s.id });

        assert.equal(await db.nextSessionExpiry(), T0 + 10);
        assert.deepEqual(await db.dueSessions(T0 + 30, 10), [b1, a2, a1].map(key));
        assert.deepEqual(await db.dueSessions(T0 + 29, 10), [b1, a2].map(key));
        assert.deepEqual(await db.dueSessions(T0 + 30, 1), [key(b1)]);
        assert.deepEqual(await db.dueSessions(T0 + 9, 10), []);
        assert.deepEqual(await db.dueSessions(T0 + 30, 0), []);

        await db.endSession('other', b1.id, {
          state: 'expired',
          endedAt: T0 + 40,
          summary: null,
          expectedMessages: 0,
        });
        assert.equal(await db.nextSessionExpiry(), T0 + 20);
        await db.touchSession('acme', a2.id, {
          at: T0 + 25,
          expiresAt: T0 + 200,
          timeoutMs: 175,
          timeoutBasis: DEFAULT_BASIS,
          messages: 1,
        });
        assert.equal(await db.nextSessionExpiry(), T0 + 30);
        assert.deepEqual(await db.dueSessions(T0 + 1000, 10), [a1, later, a2].map(key));
        for (const s of [a1, later, a2]) {
          const expectedMessages = s === a2 ? 1 : 0;
          assert.ok(
            await db.endSession(s.tenant, s.id, {
              state: 'ended',
              endedAt: T0,
              summary: null,
              expectedMessages,
            }),
          );
        }
        assert.equal(await db.nextSessionExpiry(), null);
        assert.deepEqual(await db.dueSessions(T0 + 10 ** 9, 10), []);
      } finally {
        await own.dispose();
      }
    });

    it('stores, replaces and reads timeout models per user', async () => {
      const userId = freshUser();
      const other = freshUser();
      const model = (fields: Partial<TimeoutModelRow>): TimeoutModelRow => ({
        tenant: 'acme',
        userId,
        model: '{"z":1,"a":[0.5,1e-7],"text":"ünï"}',
        updatedAt: T0,
        ...fields,
      });
      assert.equal(await store.getTimeoutModel('acme', userId), null);
      await store.putTimeoutModels([]);
      const mine = model({});
      const theirs = model({ userId: other, model: '{"n":2}' });
      const elsewhere = model({ tenant: 'other', model: '{"n":3}' });
      await store.putTimeoutModels([mine, theirs, elsewhere]);
      assert.deepEqual(await store.getTimeoutModel('acme', userId), mine, 'the text as given');
      assert.deepEqual(await store.getTimeoutModel('acme', other), theirs);
      assert.deepEqual(await store.getTimeoutModel('other', userId), elsewhere);

      // Replaced; the same user twice in one call: the last one wins.
      const newer = model({ model: '{"v":2}', updatedAt: T0 + 5 });
      const newest = model({ model: '{"v":3}', updatedAt: T0 + 6 });
      await store.putTimeoutModels([newer, model({ userId: other, model: '{"n":4}' }), newest]);
      assert.deepEqual(await store.getTimeoutModel('acme', userId), newest);
      assert.equal((await store.getTimeoutModel('acme', other))?.model, '{"n":4}');
      assert.deepEqual(await store.getTimeoutModel('other', userId), elsewhere);
      // Concurrent writers of overlapping users (in different orders) both commit.
      const users = Array.from({ length: 20 }, () => freshUser());
      await Promise.all(
        [users, users.slice().reverse()].map((order, k) =>
          store.putTimeoutModels(order.map((u) => model({ userId: u, updatedAt: T0 + k }))),
        ),
      );
      for (const u of users) assert.ok(await store.getTimeoutModel('acme', u));
    });

    it("erases a user's sessions and timeout model with the user's records", async () => {
      const userId = freshUser();
      const bystander = freshUser();
      const sessions = [
        sessionRow({ userId }),
        sessionRow({ userId, state: 'ended', endedAt: T0 }),
      ];
      const kept = [sessionRow({ userId: bystander }), sessionRow({ tenant: 'other', userId })];
      for (const s of [...sessions, ...kept]) await store.insertSession(s);
      const models = [
        { tenant: 'acme', userId, model: '{}', updatedAt: T0 },
        { tenant: 'acme', userId: bystander, model: '{}', updatedAt: T0 },
        { tenant: 'other', userId, model: '{}', updatedAt: T0 },
      ];
      await store.putTimeoutModels(models);
      await store.putIdempotency(idem({ userId }));

      assert.equal(await store.eraseUserRecords('acme', userId), 1);
      for (const s of sessions) assert.equal(await store.getSession('acme', s.id), null);
      assert.deepEqual(await store.listSessions('acme', userId, null, 10), []);
      assert.equal(await store.getTimeoutModel('acme', userId), null);
      for (const s of kept) assert.deepEqual(await store.getSession(s.tenant, s.id), s);
      assert.deepEqual(await store.getTimeoutModel('acme', bystander), models[1]);
      assert.deepEqual(await store.getTimeoutModel('other', userId), models[2]);
      assert.equal(await store.eraseUserRecords('acme', userId), 0);
    });

    it('has an index for every list, get and lookup query (no full scan of memories)', async () => {
      for (const query of PLANNED_QUERIES) {
        const plan = await store.explain(query);
        assert.ok(plan.length > 0, `${query}: empty plan`);
        assert.deepEqual(fullScans(plan), [], `${query} scans a whole table:\n${plan}`);
      }
    });
  });
}
