/**
 * POST /v1/users/{userId}/memories/search over the real app: ranking and explain, filters and
 * k, per-request weights and fusion, read-your-writes through the per-user index (updated in
 * place by writes), the access write-behind, tenant and user isolation (with fast-check
 * properties), the full-text path for users too large to index (SQLite FTS5 and PostgreSQL
 * tsvector), and two instances sharing PostgreSQL and Redis.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { SIGNALS } from '../../src/search/fusion.ts';
import { DEFAULT_BYTES_PER_MEMORY } from '../../src/search/index-cache.ts';
import { TRANSIENT_MAX_MEMORIES } from '../../src/search/search-service.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { type TestApp, testApp } from '../helpers/app.ts';
import { needs, pgSchema, REDIS_URL } from '../helpers/services.ts';

interface Item {
  memory: { id: string; userId: string; content: string; kind: string; tags: string[] };
  score: number;
  explain?: {
    signals: Record<string, { value: number; weight: number; contribution: number }>;
    matchedTerms: string[];
    bm25: number;
    context: number;
  };
}
interface Answer {
  items: Item[];
  terms: string[];
  fusion: string;
  source: string;
  vector: boolean;
}

async function add(t: TestApp, body: Record<string, unknown>, key = t.key): Promise<string> {
  const res = await t.call({
    method: 'POST',
    url: '/v1/memories',
    headers: { authorization: `Bearer ${key}` },
    payload: body,
  });
  assert.equal(res.statusCode, 201, res.body);
  return (res.json() as { id: string }).id;
}

async function search(
  t: TestApp,
  userId: string,
  body: Record<string, unknown>,
  key = t.key,
): Promise<Answer> {
  const res = await t.call({
    method: 'POST',
    url: `/v1/users/${encodeURIComponent(userId)}/memories/search`,
    headers: { authorization: `Bearer ${key}` },
    payload: body,
  });
  assert.equal(res.statusCode, 200, res.body);
  assert.match(
    String(res.headers['server-timing']),
    /^app;dur=\d+\.\d{3}, index;desc="(hit|built|fulltext)"$/,
  );
  return res.json() as Answer;
}

/** A PostgreSQL store in a fresh schema; the app closes the store, `drop` removes the schema. */
async function pgStore(
  url?: string,
): Promise<{ store: PostgresStore; url: string; drop: () => Promise<void> }> {
  const schema = url ? { url, drop: async () => undefined } : await pgSchema();
  const store = new PostgresStore({
    url: schema.url,
    poolMax: 2,
    connectTimeoutMs: 2000,
    statementTimeoutMs: 5000,
  });
  return { store, url: schema.url, drop: schema.drop };
}

const contents = (a: Answer): string[] => a.items.map((i) => i.memory.content);

describe('search API (SQLite)', () => {
  let t: TestApp;
  before(async () => {
    t = await testApp();
    await add(t, { userId: 'ana', content: 'Ana adopted a dog named Rex from the shelter' });
    await add(t, { userId: 'ana', content: 'Ana loves hiking in the Alps', kind: 'preference' });
    await add(t, { userId: 'ana', content: 'Ana is allergic to peanuts', importance: 1 });
    await add(t, {
      userId: 'ana',
      content: 'Call the vet on Monday',
      pinned: true,
      tags: ['todo'],
    });
    await add(t, {
      userId: 'ana',
      content: 'Ana walks Rex every morning',
      tags: ['dog', 'routine'],
    });
  });
  after(async () => {
    await t.close();
  });

  it('ranks by text relevance and explains every signal', async () => {
    const a = await search(t, 'ana', { query: 'What is the name of her dog?', explain: true });
    assert.equal(a.source, 'index');
    assert.equal(a.vector, false);
    assert.deepEqual(a.terms, ['name', 'dog']);
    assert.equal(a.items[0]?.memory.content, 'Ana adopted a dog named Rex from the shelter');
    for (const item of a.items) {
      assert.ok(Number.isFinite(item.score));
      const e = item.explain;
      assert.ok(e);
      assert.deepEqual(Object.keys(e.signals), [...SIGNALS]);
      let sum = 0;
      for (const s of Object.values(e.signals)) {
        assert.ok(s.value >= 0 && s.value <= 1, JSON.stringify(s));
        assert.ok(Math.abs(s.contribution - s.value * s.weight) < 1e-12);
        sum += s.contribution;
      }
      // The weighted fusion's score is the sum of the contributions (a non-matching filler
      // is capped below the matches).
      if (e.signals.text?.value) assert.ok(Math.abs(sum - item.score) < 1e-9);
    }
    assert.deepEqual(a.items[0]?.explain?.matchedTerms, ['name', 'dog']);
    // Without explain, no breakdown.
    const plain = await search(t, 'ana', { query: 'dog' });
    assert.equal(plain.items[0]?.explain, undefined);
  });

  it('matches tags and kind, and stems words', async () => {
    assert.equal(
      contents(await search(t, 'ana', { query: 'routine', k: 1 }))[0],
      'Ana walks Rex every morning',
    );
    assert.equal(
      contents(await search(t, 'ana', { query: 'preferences', k: 1 }))[0],
      'Ana loves hiking in the Alps',
    );
    assert.equal(
      contents(await search(t, 'ana', { query: 'hikes', k: 1 }))[0],
      'Ana loves hiking in the Alps',
    );
  });

  it('an empty query ranks by the other signals: pinned, then importance', async () => {
    const a = await search(t, 'ana', { query: '', k: 2 });
    assert.deepEqual(contents(a), ['Call the vet on Monday', 'Ana is allergic to peanuts']);
    assert.deepEqual(a.terms, []);
  });

  it('honours k, filters, per-request weights and reciprocal rank fusion', async () => {
    assert.equal((await search(t, 'ana', { query: 'ana', k: 2 })).items.length, 2);
    assert.equal((await search(t, 'ana', { query: 'ana', k: 100 })).items.length, 5);
    const kinds = await search(t, 'ana', { query: 'ana', kind: 'preference' });
    assert.deepEqual(contents(kinds), ['Ana loves hiking in the Alps']);
    const tagged = await search(t, 'ana', { query: '', tags: ['dog', 'routine'] });
    assert.deepEqual(contents(tagged), ['Ana walks Rex every morning']);
    const pinned = await search(t, 'ana', { query: 'ana', pinned: true });
    assert.deepEqual(contents(pinned), ['Call the vet on Monday']);
    const none = await search(t, 'ana', { query: 'ana', createdBefore: '2000-01-01T00:00:00Z' });
    assert.deepEqual(none.items, []);
    // Importance outweighing text puts the important memory first among those matching.
    const important = await search(t, 'ana', {
      query: 'ana',
      weights: { text: 0.1, importance: 10 },
      explain: true,
    });
    assert.equal(important.items[0]?.memory.content, 'Ana is allergic to peanuts');
    assert.equal(important.items[0]?.explain?.signals.importance?.weight, 10);
    const rrf = await search(t, 'ana', { query: 'dog', fusion: 'rrf' });
    assert.equal(rrf.fusion, 'rrf');
    assert.equal(rrf.items.length, 5);
    for (const item of rrf.items) assert.ok(Number.isFinite(item.score));
  });

  it('finds a memory in the next search after its write, change, delete and restore', async () => {
    const builds = t.ctx.indexes.counters.builds;
    const id = await add(t, { userId: 'ana', content: 'Ana bought a red kayak' });
    assert.equal(contents(await search(t, 'ana', { query: 'kayak' }))[0], 'Ana bought a red kayak');
    const patched = await t.call({
      method: 'PATCH',
      url: `/v1/memories/${id}`,
      payload: { content: 'Ana bought a blue canoe' },
    });
    assert.equal(patched.statusCode, 200);
    assert.ok(
      !contents(await search(t, 'ana', { query: 'kayak' })).includes('Ana bought a red kayak'),
    );
    assert.equal(
      contents(await search(t, 'ana', { query: 'canoe' }))[0],
      'Ana bought a blue canoe',
    );
    assert.equal((await t.call({ method: 'DELETE', url: `/v1/memories/${id}` })).statusCode, 200);
    assert.ok(
      !contents(await search(t, 'ana', { query: 'canoe' })).includes('Ana bought a blue canoe'),
    );
    const restored = await t.call({ method: 'POST', url: `/v1/memories/${id}/restore` });
    assert.equal(restored.statusCode, 200);
    assert.equal(
      contents(await search(t, 'ana', { query: 'canoe' }))[0],
      'Ana bought a blue canoe',
    );
    // Every write went into the held index in place: no rebuild.
    assert.equal(t.ctx.indexes.counters.builds, builds);
    assert.ok(t.ctx.indexes.counters.updates >= 4);
  });

  it('replays writes made during a build onto the index, so a busy user keeps one', async () => {
    const items = Array.from({ length: 2_400 }, (_, i) => ({
      userId: 'busy',
      content: `busy note ${i} about gardens and rivers`,
    }));
    for (let i = 0; i < items.length; i += 1_000) {
      const res = await t.call({
        method: 'POST',
        url: '/v1/memories/batch',
        payload: { items: items.slice(i, i + 1_000) },
      });
      assert.equal(res.statusCode, 201, res.body);
    }
    const counters = { ...t.ctx.indexes.counters };
    // Writes keep coming while the first search builds the index (in chunks, yielding).
    let building = true;
    const searching = search(t, 'busy', { query: 'gardens' }).finally(() => {
      building = false;
    });
    const written: string[] = [];
    while (building) {
      const word = `zephyr${written.length}`;
      await add(t, { userId: 'busy', content: `busy wrote ${word}` });
      written.push(word);
    }
    await searching;
    assert.ok(written.length >= 2, `${written.length} writes during the build`);
    assert.ok(t.ctx.indexes.counters.replayed > counters.replayed, 'no write replayed');
    // Every write is found, from the one index built: no rebuild for the writes during it.
    for (const word of written) {
      const res = await t.call({
        method: 'POST',
        url: '/v1/users/busy/memories/search',
        payload: { query: word, k: 1 },
      });
      assert.match(String(res.headers['server-timing']), /index;desc="hit"/);
      assert.equal((res.json() as Answer).items[0]?.memory.content, `busy wrote ${word}`);
    }
    assert.equal(t.ctx.indexes.counters.builds, counters.builds + 1);
  });

  it('counts results as accesses, written behind without a new version or history', async () => {
    const id = await add(t, { userId: 'bo', content: 'Bo plays the cello' });
    const before = await t.ctx.store.getMemory('acme', id);
    await search(t, 'bo', { query: 'cello' });
    await search(t, 'bo', { query: 'cello' });
    // Not written yet: one batch per interval.
    assert.equal((await t.ctx.store.getMemory('acme', id))?.accessCount, 0);
    await t.ctx.access.flush();
    const row = await t.ctx.store.getMemory('acme', id);
    assert.equal(row?.accessCount, 2);
    assert.ok((row?.lastAccessedAt ?? 0) >= (before?.createdAt ?? Infinity));
    assert.equal(row?.version, before?.version);
    assert.equal(row?.updatedAt, before?.updatedAt);
    assert.equal((await t.ctx.store.listHistory('acme', id)).length, 1);
  });

  it('never shows another tenant or another user (fast-check)', async () => {
    const vocab = ['apple', 'river', 'guitar', 'piano', 'tennis', 'garden', 'coffee', 'train'];
    const word = fc.constantFrom(...vocab);
    const text = fc.array(word, { minLength: 1, maxLength: 6 }).map((w) => w.join(' '));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ who: fc.integer({ min: 0, max: 2 }), text }), {
          minLength: 1,
          maxLength: 12,
        }),
        text,
        fc.integer({ min: 1, max: 20 }),
        fc.option(fc.constantFrom('fact', 'preference'), { nil: undefined }),
        async (memories, query, k, kind) => {
          const run = Math.random().toString(36).slice(2);
          const mine = `p-${run}`;
          const owners = [
            { user: mine, key: t.key },
            { user: `q-${run}`, key: t.key },
            { user: mine, key: t.otherKey },
          ];
          const ids = new Set<string>();
          for (const [i, m] of memories.entries()) {
            const owner = owners[m.who] as { user: string; key: string };
            const id = await add(
              t,
              { userId: owner.user, content: m.text, kind: i % 2 ? 'fact' : 'preference' },
              owner.key,
            );
            if (m.who === 0) ids.add(id);
          }
          const a = await search(t, mine, { query, k, ...(kind ? { kind } : {}) });
          assert.ok(a.items.length <= k);
          const expected = memories.filter(
            (m, i) => m.who === 0 && (!kind || (i % 2 ? 'fact' : 'preference') === kind),
          ).length;
          assert.equal(a.items.length, Math.min(k, expected));
          for (let i = 0; i < a.items.length; i++) {
            const item = a.items[i] as Item;
            assert.ok(ids.has(item.memory.id), 'a memory of another user or tenant');
            assert.equal(item.memory.userId, mine);
            if (kind) assert.equal(item.memory.kind, kind);
            assert.ok(Number.isFinite(item.score));
            if (i > 0) assert.ok((a.items[i - 1] as Item).score >= item.score);
          }
          // Read-your-writes: a new memory with a word nobody has is the first result.
          const unique = `zq${run}`;
          const id = await add(t, { userId: mine, content: `${unique} ${query}` });
          assert.equal((await search(t, mine, { query: unique })).items[0]?.memory.id, id);
        },
      ),
      { numRuns: 30 },
    );
  });
});

/** Runs the index and full-text paths over one app (SQLite or PostgreSQL). */
function fullTextSuite(name: string, open: () => Promise<TestApp>): void {
  describe(name, () => {
    let t: TestApp;
    before(async () => {
      t = await open();
      const items = [
        'Running shoes for the marathon',
        'She runs every Sunday by the lake',
        'Bought a new laptop for work',
        'The lake house is rented for August',
        'Marathon training plan: five runs a week',
      ].map((content, i) => ({ userId: 'big', content, kind: i === 2 ? 'event' : 'fact' }));
      const res = await t.call({ method: 'POST', url: '/v1/memories/batch', payload: { items } });
      assert.equal(res.statusCode, 201, res.body);
      await add(t, { userId: 'big', content: 'the marathon of another tenant' }, t.otherKey);
    });
    after(async () => {
      await t.close();
    });

    it('searches a user over the index limit through the store, with the same answer shape', async () => {
      const a = await search(t, 'big', { query: 'marathon runs', explain: true });
      assert.equal(a.source, 'fulltext');
      const found = contents(a);
      assert.ok(found.includes('Marathon training plan: five runs a week'), found.join(' | '));
      assert.ok(found.includes('Running shoes for the marathon'), found.join(' | '));
      assert.ok(!found.includes('the marathon of another tenant'));
      assert.ok(!found.includes('Bought a new laptop for work'));
      // Both hold both words, best first; the rest hold one of them.
      assert.deepEqual(
        new Set(found.slice(0, 2)),
        new Set(['Marathon training plan: five runs a week', 'Running shoes for the marathon']),
      );
      for (const item of a.items) {
        assert.ok(Number.isFinite(item.score));
        assert.ok(item.explain && item.explain.bm25 > 0);
      }
    });

    it('applies filters, empty queries and hostile text on the full-text path', async () => {
      const events = await search(t, 'big', { query: 'laptop work', kind: 'event' });
      assert.deepEqual(contents(events), ['Bought a new laptop for work']);
      const empty = await search(t, 'big', { query: '', k: 3 });
      assert.equal(empty.items.length, 3);
      for (const query of ['"*( NEAR AND OR', "') OR 1=1 --", '😀 東京', 'a'.repeat(2000)]) {
        const a = await search(t, 'big', { query });
        assert.equal(a.source, 'fulltext');
      }
    });

    it('finds a write on the next search, and a delete is gone', async () => {
      const id = await add(t, { userId: 'big', content: 'Kayaking on the fjord' });
      assert.equal((await search(t, 'big', { query: 'kayak' })).items[0]?.memory.id, id);
      await t.call({ method: 'DELETE', url: `/v1/memories/${id}` });
      assert.deepEqual((await search(t, 'big', { query: 'kayak fjord' })).items, []);
    });
  });
}

describe('search: users whose index the cache refuses (a 1-byte index budget)', () => {
  let t: TestApp;
  const transientMax = TRANSIENT_MAX_MEMORIES;
  before(async () => {
    t = await testApp({ env: { ENGRAM_SEARCH_INDEX_MAX_BYTES: '1' } });
    const items = (n: number, userId: string) =>
      Array.from({ length: n }, (_, i) => ({
        userId,
        content: i === 0 ? 'Kayaking on the fjord in June' : `Note ${i} about the garden`,
      }));
    for (const [userId, n] of [
      ['small', 5],
      ['bigger', transientMax + 1],
    ] as const) {
      const res = await t.call({
        method: 'POST',
        url: '/v1/memories/batch',
        payload: { items: items(n, userId) },
      });
      assert.equal(res.statusCode, 201, res.body);
    }
  });
  after(async () => {
    await t.close();
  });

  async function searched(userId: string): Promise<{ answer: Answer; index: string }> {
    const res = await t.call({
      method: 'POST',
      url: `/v1/users/${userId}/memories/search`,
      payload: { query: 'kayak fjord' },
    });
    assert.equal(res.statusCode, 200, res.body);
    const index = /index;desc="(\w+)"/.exec(String(res.headers['server-timing']))?.[1] ?? '';
    return { answer: res.json() as Answer, index };
  }

  async function transientBuilds(): Promise<number> {
    const res = await t.call({ method: 'GET', url: '/v1/stats/cache' });
    return (res.json() as { search: { transient: number } }).search.transient;
  }

  it(`ranks a user of at most ${transientMax} memories over an index built for the search, not kept`, async () => {
    const before = await transientBuilds();
    for (let i = 0; i < 2; i++) {
      const { answer, index } = await searched('small');
      assert.equal(answer.source, 'index');
      assert.equal(index, 'built', 'never held: built again by each search');
      assert.equal(answer.items[0]?.memory.content, 'Kayaking on the fjord in June');
    }
    assert.equal(await transientBuilds(), before + 2);
  });

  it('sends a bigger refused user to the store full-text index', async () => {
    const before = await transientBuilds();
    const { answer, index } = await searched('bigger');
    assert.equal(answer.source, 'fulltext');
    assert.equal(index, 'fulltext');
    assert.equal(answer.items[0]?.memory.content, 'Kayaking on the fjord in June');
    assert.equal(await transientBuilds(), before);
  });
});

describe('search: a bigger user whose index does not fit beside the held ones', () => {
  const sizes = { filler: 450, big: TRANSIENT_MAX_MEMORIES + 1 };
  // Admission goes by estimates (DEFAULT_BYTES_PER_MEMORY a memory until builds teach it
  // better; these short notes take less): room for either index, not for both.
  const budget = Math.ceil(1.1 * DEFAULT_BYTES_PER_MEMORY * Math.max(sizes.filler, sizes.big));
  let t: TestApp;
  before(async () => {
    t = await testApp({ env: { ENGRAM_SEARCH_INDEX_MAX_BYTES: String(budget) } });
    for (const [userId, n] of Object.entries(sizes)) {
      const items = Array.from({ length: n }, (_, i) => ({
        userId,
        content: i === 0 ? 'Kayaking on the fjord in June' : `Note ${i} about the garden`,
      }));
      const res = await t.call({ method: 'POST', url: '/v1/memories/batch', payload: { items } });
      assert.equal(res.statusCode, 201, res.body);
    }
  });
  after(async () => {
    await t.close();
  });
  const searched = async (userId: string) => {
    const res = await t.call({
      method: 'POST',
      url: `/v1/users/${userId}/memories/search`,
      payload: { query: 'kayak fjord' },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((res.json() as Answer).items[0]?.memory.content, 'Kayaking on the fjord in June');
    return /index;desc="(\w+)"/.exec(String(res.headers['server-timing']))?.[1] ?? '';
  };

  it('is searched through the full text, pushing no index out; its session start warms it', async () => {
    assert.equal(await searched('filler'), 'built');
    assert.equal(await searched('filler'), 'hit');
    // Searched more often than the filler, yet no search builds its index.
    for (let i = 0; i < 5; i++) assert.equal(await searched('big'), 'fulltext', `search ${i}`);
    assert.equal(await searched('filler'), 'hit', 'the held index was not pushed out');
    // A session start warms the big user's index in the background: admission may push out
    // the indexes of users wanted less often lately.
    const start = await t.call({
      method: 'POST',
      url: '/v1/sessions',
      payload: { userId: 'big', context: 'kayak' },
    });
    assert.equal(start.statusCode, 201, start.body);
    let index = '';
    for (let i = 0; i < 100 && index !== 'hit'; i++) {
      await sleep(20);
      index = await searched('big');
    }
    assert.equal(index, 'hit', "the session's searches find the warmed index");
  });
});

const LARGE = { ENGRAM_SEARCH_INDEX_MAX_MEMORIES: '3' };
fullTextSuite('search: users too large to index (SQLite FTS5)', () => testApp({ env: LARGE }));

const pg = await needs('postgres');
describe('search on PostgreSQL', { skip: pg.skip }, () => {
  fullTextSuite('search: users too large to index (PostgreSQL tsvector)', async () => {
    const { store, drop } = await pgStore();
    const t = await testApp({ store, env: LARGE });
    return {
      ...t,
      close: async () => {
        await t.close();
        await drop();
      },
    };
  });

  it('ranks over the in-process index on PostgreSQL too', async () => {
    const { store, drop } = await pgStore();
    const t = await testApp({ store });
    try {
      await add(t, { userId: 'cy', content: 'Cy collects vinyl records' });
      await add(t, { userId: 'cy', content: 'Cy drinks green tea' });
      const a = await search(t, 'cy', { query: 'records' });
      assert.equal(a.source, 'index');
      assert.equal(a.items[0]?.memory.content, 'Cy collects vinyl records');
    } finally {
      await t.close();
      await drop();
    }
  });
});

const redis = await needs('redis');
describe('search: two instances sharing PostgreSQL and Redis', {
  skip: redis.skip || pg.skip,
}, () => {
  it('drops an index when another instance writes, so the write is found', async () => {
    const a = await pgStore();
    const b = await pgStore(a.url);
    const env = { REDIS_URL };
    const one = await testApp({ store: a.store, env });
    const two = await testApp({ store: b.store, env });
    try {
      const user = `shared-${Date.now()}`;
      await add(one, { userId: user, content: 'the first note' });
      assert.equal((await search(one, user, { query: 'note' })).items.length, 1);
      const builds = one.ctx.indexes.counters.builds;
      // Instance two writes (its own tenant key maps to the same tenant name `acme`).
      await add(two, { userId: user, content: 'a second note about sailing' }, two.key);
      // The bus carries the new version to instance one within milliseconds.
      let found = false;
      for (let i = 0; i < 100 && !found; i++) {
        found = contents(await search(one, user, { query: 'sailing' })).includes(
          'a second note about sailing',
        );
        if (!found) await sleep(20);
      }
      assert.ok(found, 'instance one never found the write of instance two');
      assert.equal(one.ctx.indexes.counters.builds, builds + 1);
    } finally {
      await one.close();
      await two.close();
      await a.drop();
    }
  });
});
