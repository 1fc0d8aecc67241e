/**
 * The per-user search index (slots, postings, out-of-order guard, session links, compaction)
 * and the ranker over it (text match, filters, expiry, fill, context, explain, RRF), with
 * model-based properties on random memories.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { MemoryRow } from '../../src/memory/memory-types.ts';
import { answeredRows } from '../../src/search/answered-rows.ts';
import { DEFAULT_WEIGHTS, SIGNALS, type Weights } from '../../src/search/fusion.ts';
import {
  DEFAULT_TEXT_RANKING,
  type Ranked,
  type RankOptions,
  rank,
  rankCounts,
  type SignalExplanation,
} from '../../src/search/ranker.ts';
import type { SearchFilter } from '../../src/search/search-filter.ts';
import { termsOf } from '../../src/search/tokenizer.ts';
import { indexedText, UserIndex } from '../../src/search/user-index.ts';
import { memoryRow } from '../helpers/rows.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 0, 15);

/** A sortable id for memory number n (ids order like creation, as ULIDs do). */
const idOf = (n: number): string => `01MEM${String(n).padStart(6, '0')}`;

/** A live memory of number n with the given content; every other field has a plain default. */
function mem(n: number, content: string, over: Partial<MemoryRow> = {}): MemoryRow {
  return memoryRow({
    tenant: 'tenant',
    id: idOf(n),
    userId: 'user',
    content,
    importance: 0,
    createdAt: NOW - DAY,
    ...over,
  });
}

/** The next version of a memory, with changes. */
const next = (row: MemoryRow, over: Partial<MemoryRow> = {}): MemoryRow => ({
  ...row,
  updatedAt: row.updatedAt + 1,
  version: row.version + 1,
  ...over,
});

/** The deletion of a memory (its next version, soft-deleted). */
const deleted = (row: MemoryRow): MemoryRow => next(row, { deletedAt: NOW - 1 });

function options(over: Partial<RankOptions> = {}): RankOptions {
  return {
    k: 10,
    filter: {},
    weights: { ...DEFAULT_WEIGHTS },
    fusion: 'weighted',
    now: NOW,
    halfLifeMs: 30 * DAY,
    ...DEFAULT_TEXT_RANKING,
    queryVector: null,
    explain: false,
    ...over,
  };
}

const search = (index: UserIndex, query: string, over: Partial<RankOptions> = {}): Ranked[] =>
  rank(index, termsOf(query), options(over));

const ids = (results: Ranked[]): string[] => results.map((r) => r.row.id);

/** Ids of the results that matched the query by their own text (BM25 > 0). */
function matching(index: UserIndex, query: string, over: Partial<RankOptions> = {}): string[] {
  return search(index, query, { k: 1_000, context: 0, ...over, explain: true })
    .filter((r) => (r.explain?.bm25 ?? 0) > 0)
    .map((r) => r.row.id);
}

/** Live df of the stem of a word. */
const dfOf = (index: UserIndex, word: string): number => index.df(termsOf(word)[0] as string);

/**
 * A session's memories in list order, checked both ways: walks back from the tail, then
 * forward from the head, and requires the same list.
 */
function sessionOrder(index: UserIndex, sessionId: string): string[] {
  const tail = index.sessionTail.get(sessionId);
  if (tail === undefined) return [];
  const backwards: number[] = [];
  for (let s = tail; s >= 0; s = index.prev(s)) {
    backwards.push(s);
    assert.ok(backwards.length <= index.slots, 'cycle in before links');
  }
  const forwards: number[] = [];
  for (let s = backwards.at(-1) as number; s >= 0; s = index.next(s)) {
    forwards.push(s);
    assert.ok(forwards.length <= index.slots, 'cycle in after links');
  }
  assert.deepEqual(forwards, [...backwards].reverse(), 'before and after links disagree');
  return forwards.map((s) => {
    const row = index.row(s);
    assert.ok(row, `session ${sessionId} links to emptied slot ${s}`);
    assert.equal(row.sessionId, sessionId);
    return row.id;
  });
}

/** Whether a row passes a filter and is live: written from the filter's documentation. */
function oracle(row: MemoryRow, f: SearchFilter, now: number): boolean {
  if (row.deletedAt !== null) return false;
  if (row.expiresAt !== null && row.expiresAt <= now) return false;
  if (f.kind !== undefined && row.kind !== f.kind) return false;
  if (f.sessionId !== undefined && row.sessionId !== f.sessionId) return false;
  if (f.agentId !== undefined && row.agentId !== f.agentId) return false;
  if (f.pinned !== undefined && row.pinned !== f.pinned) return false;
  if (f.createdFrom !== undefined && !(row.createdAt >= f.createdFrom)) return false;
  if (f.createdTo !== undefined && !(row.createdAt < f.createdTo)) return false;
  if (f.updatedFrom !== undefined && !(row.updatedAt >= f.updatedFrom)) return false;
  if (f.updatedTo !== undefined && !(row.updatedAt < f.updatedTo)) return false;
  if (f.tags !== undefined && !f.tags.every((t) => row.tags.includes(t))) return false;
  return true;
}

describe('UserIndex: building and updating', () => {
  it('builds from rows: every memory held and findable, df counted', () => {
    const rows = [mem(1, 'apple pie recipe'), mem(2, 'banana bread recipe'), mem(3, 'cherry tart')];
    const index = new UserIndex(7, rows);
    assert.equal(index.version, 7);
    assert.equal(index.docCount, 3);
    assert.equal(index.slots, 3);
    assert.equal(dfOf(index, 'recipe'), 2);
    assert.equal(dfOf(index, 'cherry'), 1);
    assert.deepEqual(matching(index, 'apple'), [idOf(1)]);
    assert.deepEqual(matching(index, 'recipe').sort(), [idOf(1), idOf(2)]);
    assert.deepEqual(matching(index, 'tart'), [idOf(3)]);
    assert.ok(index.bytes > 0);
  });

  it('indexes tags and kind along with the content', () => {
    const index = new UserIndex(1, [
      mem(1, 'something', { tags: ['holiday'], kind: 'preference' }),
      mem(2, 'else'),
    ]);
    assert.deepEqual(matching(index, 'holiday'), [idOf(1)]);
    assert.deepEqual(matching(index, 'preference'), [idOf(1)]);
  });

  it('skips deleted rows given at build time', () => {
    const index = new UserIndex(1, [mem(1, 'apple'), mem(2, 'apple', { deletedAt: NOW - DAY })]);
    assert.equal(index.docCount, 1);
    assert.deepEqual(ids(search(index, 'apple')), [idOf(1)]);
  });

  it('an upsert replaces the content: the old term no longer matches, df follows', () => {
    const v1 = mem(1, 'apple pie');
    const index = new UserIndex(1, [v1, mem(2, 'apple juice')]);
    assert.equal(dfOf(index, 'apple'), 2);
    index.upsert(next(v1, { content: 'banana split' }));
    assert.equal(index.docCount, 2);
    assert.equal(dfOf(index, 'apple'), 1);
    assert.equal(dfOf(index, 'pie'), 0);
    assert.equal(dfOf(index, 'banana'), 1);
    assert.deepEqual(matching(index, 'apple'), [idOf(2)]);
    assert.deepEqual(matching(index, 'pie'), []);
    assert.deepEqual(matching(index, 'banana'), [idOf(1)]);
    assert.equal(search(index, 'banana')[0]?.row.content, 'banana split');
    // One copy of the memory only.
    assert.equal(ids(search(index, '')).filter((id) => id === idOf(1)).length, 1);
  });

  it('re-applying the same version keeps a single copy', () => {
    const row = mem(1, 'apple');
    const index = new UserIndex(1, [row]);
    index.upsert({ ...row });
    index.upsert({ ...row });
    assert.equal(index.docCount, 1);
    assert.equal(dfOf(index, 'apple'), 1);
    assert.deepEqual(ids(search(index, 'apple')), [idOf(1)]);
  });

  it('a delete removes the memory from every answer (matches, fill, empty query)', () => {
    const row = mem(1, 'apple pie');
    const index = new UserIndex(1, [row, mem(2, 'banana')]);
    index.upsert(deleted(row));
    assert.equal(index.docCount, 1);
    assert.equal(index.slotOf(idOf(1)) >= 0, false);
    assert.equal(dfOf(index, 'apple'), 0);
    assert.deepEqual(ids(search(index, 'apple')), [idOf(2)]);
    assert.deepEqual(ids(search(index, '')), [idOf(2)]);
    assert.deepEqual(ids(search(index, 'banana')), [idOf(2)]);
  });

  it('ignores an older version upserted after a newer one', () => {
    const v1 = mem(1, 'apple');
    const v2 = next(v1, { content: 'banana' });
    const index = new UserIndex(1, [v2]);
    index.upsert(v1);
    assert.deepEqual(matching(index, 'banana'), [idOf(1)]);
    assert.deepEqual(matching(index, 'apple'), []);
    assert.equal(index.docCount, 1);
  });

  it('ignores an older version upserted after a delete (tombstone), accepts a newer one', () => {
    const v1 = mem(1, 'apple');
    const v2 = next(v1, { content: 'banana' });
    const v3 = deleted(v2);
    const index = new UserIndex(1, [v1]);
    index.upsert(v3);
    index.upsert(v2);
    index.upsert(v1);
    assert.equal(index.docCount, 0);
    assert.deepEqual(ids(search(index, 'apple')), []);
    assert.deepEqual(ids(search(index, '')), []);
    // A restore is a newer version: it comes back.
    index.upsert(next(v3, { deletedAt: null, content: 'cherry' }));
    assert.deepEqual(matching(index, 'cherry'), [idOf(1)]);
  });

  it('remembers a delete of a memory it never held', () => {
    const v1 = mem(1, 'apple');
    const index = new UserIndex(1);
    index.upsert(deleted(v1));
    index.upsert(v1);
    assert.equal(index.docCount, 0);
  });

  it('touch updates the access statistics without a new version', () => {
    const index = new UserIndex(1, [mem(1, 'apple')]);
    index.touch(idOf(1), NOW - 5);
    index.touch(idOf(1), NOW - 10);
    index.touch('unknown', NOW);
    const row = index.row(index.slotOf(idOf(1)));
    assert.equal(row?.accessCount, 1 + 1);
    assert.equal(row?.lastAccessedAt, NOW - 5);
  });

  it('holds no more bytes after thousands of replacements of one memory than after the first', () => {
    let row = mem(1, 'apple banana cherry', { embedding: new Float32Array(256) });
    const index = new UserIndex(1, [row]);
    const replace = (times: number) => {
      for (let v = 0; v < times; v++) {
        row = next(row);
        index.upsert(row);
      }
    };
    replace(64);
    const settled = index.bytes;
    replace(5_000);
    // Replaced slots, their records and postings are given back by compaction.
    assert.ok(index.bytes <= settled, `${index.bytes} > ${settled}`);
    assert.equal(index.docCount, 1);
    assert.equal(index.row(index.slotOf(row.id))?.version, row.version);
  });

  it('gives every field of a memory back as it was added', () => {
    const rows = [
      mem(1, 'plain ascii'),
      mem(2, 'naïve café — 東京 🍣', {
        agentId: 'agent-7',
        sessionId: 'sess-1',
        kind: 'preference',
        tags: ['food', 'travel'],
        metadata: { source: 'chat', nested: { n: 1, list: [true, null, 'x'] } },
        importance: 0.37,
        pinned: true,
        expiresAt: NOW + DAY,
        accessCount: 4,
        lastAccessedAt: NOW - 3,
        version: 9,
        updatedAt: NOW - 2,
        embedding: new Float32Array([0.25, -1, 3]),
      }),
      mem(3, '', { tags: ['only-tags'] }),
    ];
    const index = new UserIndex(1, rows);
    for (const row of rows) {
      assert.deepEqual(index.row(index.slotOf(row.id)), row);
    }
    assert.equal(index.row(-1), null);
    assert.equal(index.row(index.slots), null);
  });
});

describe('UserIndex: session links', () => {
  it('links a session in id order, even when an older message arrives late', () => {
    const index = new UserIndex(1);
    const s = { sessionId: 's' };
    index.upsert(mem(3, 'three', s));
    index.upsert(mem(10, 'other session', { sessionId: 't' }));
    index.upsert(mem(1, 'one', s));
    index.upsert(mem(5, 'five', s));
    index.upsert(mem(2, 'two', s));
    index.upsert(mem(4, 'no session'));
    assert.deepEqual(sessionOrder(index, 's'), [idOf(1), idOf(2), idOf(3), idOf(5)]);
    assert.deepEqual(sessionOrder(index, 't'), [idOf(10)]);
    assert.equal(index.row(index.sessionTail.get('s') as number)?.id, idOf(5));
    const lone = index.slotOf(idOf(4));
    assert.equal(index.prev(lone), -1);
    assert.equal(index.next(lone), -1);
  });

  it('unlinks a removed middle message, and moves the tail when the newest goes', () => {
    const s = { sessionId: 's' };
    const rows = [1, 2, 3, 4].map((n) => mem(n, `message ${n}`, s));
    const index = new UserIndex(1, rows);
    index.upsert(deleted(rows[1] as MemoryRow));
    assert.deepEqual(sessionOrder(index, 's'), [idOf(1), idOf(3), idOf(4)]);
    index.upsert(deleted(rows[3] as MemoryRow));
    assert.deepEqual(sessionOrder(index, 's'), [idOf(1), idOf(3)]);
    index.upsert(deleted(rows[0] as MemoryRow));
    assert.deepEqual(sessionOrder(index, 's'), [idOf(3)]);
    index.upsert(deleted(rows[2] as MemoryRow));
    assert.deepEqual(sessionOrder(index, 's'), []);
    assert.equal(index.sessionTail.has('s'), false);
  });

  it('keeps the id order when a message is updated, and moves it when its session changes', () => {
    const s = { sessionId: 's' };
    const rows = [1, 2, 3].map((n) => mem(n, `message ${n}`, s));
    const index = new UserIndex(1, rows);
    index.upsert(next(rows[1] as MemoryRow, { content: 'edited' }));
    assert.deepEqual(sessionOrder(index, 's'), [idOf(1), idOf(2), idOf(3)]);
    index.upsert(next(rows[0] as MemoryRow, { sessionId: 't' }));
    assert.deepEqual(sessionOrder(index, 's'), [idOf(2), idOf(3)]);
    assert.deepEqual(sessionOrder(index, 't'), [idOf(1)]);
  });
});

/** Queries used to compare two indexes. */
const PROBES = ['', 'apple', 'banana cherry', 'tokyo sushi train', 'music', 'zzz', 'guitar apple'];

/** Asserts that two indexes rank every probe alike: same ids, same scores. */
function assertSameRanking(actual: UserIndex, wanted: UserIndex, over: Partial<RankOptions> = {}) {
  for (const query of PROBES) {
    for (const fusion of ['weighted', 'rrf'] as const) {
      const o = { k: 1_000, fusion, ...over };
      const a = search(actual, query, o).map((r) => [r.row.id, r.score]);
      const w = search(wanted, query, o).map((r) => [r.row.id, r.score]);
      assert.deepEqual(a, w, `query ${JSON.stringify(query)}, ${fusion}`);
    }
  }
}

const VOCAB = [
  'apple',
  'banana',
  'cherry',
  'tokyo',
  'sushi',
  'train',
  'music',
  'guitar',
  'coffee',
  'river',
  'mountain',
  'piano',
];

describe('UserIndex: sized for a build', () => {
  const rows = Array.from({ length: 300 }, (_, n) =>
    mem(n, `${VOCAB[n % VOCAB.length]} ${VOCAB[(n * 7) % VOCAB.length]} note ${n}`, {
      sessionId: n % 3 === 0 ? 's1' : null,
      tags: n % 5 === 0 ? ['red'] : [],
      metadata: n % 4 === 0 ? { turn: n, text: 'x'.repeat(n % 50) } : {},
      pinned: n % 40 === 0,
    }),
  );

  for (const expected of [300, 30, 3_000]) {
    it(`holds and ranks the same as one grown step by step (sized for ${expected} of 300)`, () => {
      const grown = new UserIndex(1, rows);
      grown.trim();
      const sized = new UserIndex(1, rows, expected);
      sized.trim();
      for (const row of rows) assert.deepEqual(sized.row(sized.slotOf(row.id)), row);
      assertSameRanking(sized, grown);
      assert.deepEqual(sessionOrder(sized, 's1'), sessionOrder(grown, 's1'));
      // Trimmed to within an eighth of what the grown index holds.
      assert.ok(sized.bytes <= grown.bytes * 1.125, `${sized.bytes} > ${grown.bytes} × 1.125`);
    });
  }
});

describe('UserIndex: compaction', () => {
  it('after many removals, ranks exactly like a fresh index of the live rows', () => {
    // A deterministic pseudo-random walk: adds, updates and deletes.
    let seed = 12345;
    const random = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const text = (): string =>
      Array.from({ length: 1 + random(6) }, () => VOCAB[random(VOCAB.length)]).join(' ');
    const sessions = [null, 's1', 's2', 's3'];
    const live = new Map<string, MemoryRow>();
    const index = new UserIndex(1);
    let added = 0;
    let slotsUsed = 0;
    const apply = (row: MemoryRow): void => {
      index.upsert(row);
      live.delete(row.id);
      if (row.deletedAt === null) {
        live.set(row.id, row);
        slotsUsed++;
      }
    };
    for (let n = 0; n < 200; n++) {
      apply(mem(n, text(), { sessionId: sessions[random(4)] ?? null, pinned: random(10) === 0 }));
      added++;
    }
    for (let step = 0; step < 400; step++) {
      const held = [...live.values()];
      const pick = held[random(held.length)] as MemoryRow;
      const op = random(10);
      if (op < 5) apply(deleted(pick));
      else if (op < 8)
        apply(next(pick, { content: text(), sessionId: sessions[random(4)] ?? null }));
      else apply(mem(1_000 + added++, text(), { sessionId: sessions[random(4)] ?? null }));
      if (step % 50 === 49) {
        // Fresh index: the live rows in the order they were last added (the slots' order).
        const fresh = new UserIndex(1, live.values());
        assert.equal(index.docCount, fresh.docCount);
        assert.equal(index.totalLength, fresh.totalLength);
        assertSameRanking(index, fresh);
        for (const s of ['s1', 's2', 's3']) {
          assert.deepEqual(sessionOrder(index, s), sessionOrder(fresh, s), `session ${s}`);
        }
      }
    }
    // Compaction happened: far fewer slots than memories ever added.
    assert.ok(index.slots < slotsUsed, `${index.slots} slots for ${slotsUsed} additions`);
    // Emptied slots stay under the compaction threshold: at most 64, or a quarter of the slots.
    const empty = index.slots - index.docCount;
    assert.ok(empty <= Math.max(64, index.slots * 0.25), `${empty} empty of ${index.slots}`);
    assert.equal(index.docCount, live.size);
    for (const { df, length } of index.postings.runs()) {
      assert.ok(df >= 0);
      assert.ok(df <= length);
    }
  });

  it('answers each memory as it is now through updates, accesses and compactions', () => {
    // Answered rows are held in a table shared by every index: two indexes (with the same slot
    // numbers), replaced, empty and long contents, tags and metadata, accesses and compactions
    // must never give one memory's fields for another, or stale access statistics.
    let seed = 777;
    // The high bits (an LCG's low bits repeat with short periods).
    const random = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return Math.floor((seed / 2 ** 31) * n);
    };
    const text = (): string =>
      Array.from({ length: 1 + random(6) }, () => VOCAB[random(VOCAB.length)]).join(' ');
    const fields = (u: number): Partial<MemoryRow> => {
      const kind = random(8);
      if (kind === 0) return { content: '' };
      // Past the length of rows the table holds.
      if (kind === 1) return { content: `${u} ${text()} ${'x'.repeat(1_100)}` };
      if (kind === 2)
        return { content: `${u} ${text()}`, tags: [text()], metadata: { n: random(9) } };
      return { content: `${u} ${text()}`, tags: [], metadata: {} };
    };
    const users = [0, 1].map((u) => ({
      index: new UserIndex(1),
      live: new Map<string, MemoryRow>(),
      u,
    }));
    const check = (user: (typeof users)[number]): void => {
      // An empty query answers every live memory.
      const answered = search(user.index, '', { k: 1_000 });
      assert.equal(answered.length, user.live.size);
      for (const { row } of answered) {
        const held = user.live.get(row.id);
        assert.ok(held, `user ${user.u}: ${row.id} is not live`);
        assert.deepEqual(row, held, `user ${user.u}: ${row.id}`);
      }
    };
    for (let n = 0; n < 150; n++) {
      for (const user of users) {
        const row = mem(n, '', fields(user.u));
        user.index.upsert(row);
        user.live.set(row.id, row);
      }
    }
    for (let step = 0; step < 900; step++) {
      const user = users[random(2)] as (typeof users)[number];
      const held = [...user.live.values()];
      const pick = held[random(held.length)] as MemoryRow;
      const op = random(3);
      if (op === 0) {
        // An access: statistics change in place, the version stays.
        const at = NOW + step * 1_000;
        user.index.touch(pick.id, at);
        user.live.set(pick.id, { ...pick, accessCount: pick.accessCount + 1, lastAccessedAt: at });
      } else {
        const changed = op === 1 && held.length > 20 ? deleted(pick) : next(pick, fields(user.u));
        user.index.upsert(changed);
        if (changed.deletedAt === null) user.live.set(changed.id, changed);
        else user.live.delete(changed.id);
      }
      if (step % 10 === 0) for (const u of users) check(u);
    }
    for (const user of users) {
      assert.ok(user.index.slots < 600, 'compacted');
      check(user);
    }
  });

  it('lets go of the held row of a replaced or deleted memory', () => {
    const user = 'held-rows-user';
    const v1 = mem(1, 'apple pie', { userId: user });
    const other = mem(2, 'apple tart', { userId: user });
    const index = new UserIndex(1, [v1, other]);
    // Both answered twice: both rows held (a row is held from its second answer).
    assert.equal(search(index, 'apple').length, 2);
    assert.equal(answeredRows.heldOf('tenant', user), 0, 'not held after one answer');
    assert.equal(search(index, 'apple').length, 2);
    assert.equal(answeredRows.heldOf('tenant', user), 2);
    index.upsert(next(v1, { content: 'cherry pie' }));
    assert.equal(answeredRows.heldOf('tenant', user), 1, 'the replaced version let go');
    index.upsert(deleted(other));
    assert.equal(answeredRows.heldOf('tenant', user), 0, 'the deleted memory let go');
    assert.deepEqual(
      search(index, 'pie').map((r) => r.row.content),
      ['cherry pie'],
    );
  });

  it('keeps the out-of-order guard across a compaction', () => {
    const rows = Array.from({ length: 100 }, (_, n) => mem(n, `apple ${VOCAB[n % VOCAB.length]}`));
    const index = new UserIndex(1, rows);
    for (const row of rows.slice(0, 80)) index.upsert(deleted(row));
    assert.ok(index.slots < 100, 'compacted');
    for (const row of rows.slice(0, 80)) index.upsert(row);
    assert.equal(index.docCount, 20);
    assert.deepEqual(
      ids(search(index, 'apple', { k: 1_000 })).sort(),
      rows.slice(80).map((r) => r.id),
    );
  });
});

describe('rank: text relevance', () => {
  const index = new UserIndex(1, [
    mem(1, 'I love sushi, and the sushi bars in Tokyo'),
    mem(2, 'Sushi for dinner'),
    mem(3, 'The weather is nice today'),
    mem(4, 'I ate ramen in Tokyo'),
    mem(5, 'Took the train to Osaka'),
    mem(6, 'Tokyo tower at night'),
  ]);

  it('puts the best text match first', () => {
    assert.equal(search(index, 'sushi Tokyo')[0]?.row.id, idOf(1));
    assert.equal(search(index, 'train')[0]?.row.id, idOf(5));
    assert.equal(search(index, 'When did I take the TRAINS?')[0]?.row.id, idOf(5));
  });

  it('ranks memories holding more of the query higher (coordination)', () => {
    const got = ids(search(index, 'tokyo ramen'));
    assert.equal(got[0], idOf(4));
    assert.ok(got.indexOf(idOf(6)) > 0);
  });

  it('honours k', () => {
    assert.equal(search(index, 'tokyo sushi', { k: 2 }).length, 2);
    assert.equal(search(index, 'tokyo sushi', { k: 1 }).length, 1);
    assert.equal(search(index, '', { k: 3 }).length, 3);
    assert.equal(search(index, 'tokyo', { k: 0 }).length, 0);
    assert.equal(search(index, 'tokyo', { k: 100 }).length, 6);
  });

  it('returns nothing from an empty index', () => {
    const empty = new UserIndex(1);
    assert.deepEqual(search(empty, 'tokyo'), []);
    assert.deepEqual(search(empty, ''), []);
  });

  it('gives the same answer twice (the scratch arrays are cleaned)', () => {
    for (const q of ['sushi tokyo', 'train', '', 'weather nice']) {
      const first = search(index, q, { explain: true });
      assert.deepEqual(search(index, q, { explain: true }), first);
    }
  });
});

describe('rank: filters', () => {
  const rows = [
    mem(1, 'note one', { kind: 'event', tags: ['a', 'b'], sessionId: 's1', agentId: 'x' }),
    mem(2, 'note two', { kind: 'fact', tags: ['a'], sessionId: 's1', pinned: true }),
    mem(3, 'note three', {
      kind: 'event',
      tags: ['b', 'c'],
      sessionId: 's2',
      agentId: 'y',
      createdAt: NOW - 10 * DAY,
      updatedAt: NOW - 2 * DAY,
    }),
    mem(4, 'note four', {
      tags: ['a', 'b', 'c'],
      pinned: true,
      agentId: 'x',
      createdAt: NOW - 5 * DAY,
      updatedAt: NOW - 5 * DAY,
    }),
    mem(5, 'other words', { kind: 'event', tags: ['a', 'b'] }),
  ];
  const index = new UserIndex(1, rows);
  const cases: Array<[string, SearchFilter]> = [
    ['kind', { kind: 'event' }],
    ['tags (all of)', { tags: ['a', 'b'] }],
    ['one tag', { tags: ['c'] }],
    ['no tags', { tags: [] }],
    ['session', { sessionId: 's1' }],
    ['pinned', { pinned: true }],
    ['not pinned', { pinned: false }],
    ['created from', { createdFrom: NOW - 5 * DAY }],
    ['created to (exclusive)', { createdTo: NOW - 5 * DAY }],
    ['updated range', { updatedFrom: NOW - 3 * DAY, updatedTo: NOW - DAY }],
    ['agent', { agentId: 'x' }],
    ['combined', { kind: 'event', tags: ['b'], agentId: 'y' }],
    ['matching nothing', { kind: 'nope' }],
  ];
  for (const [name, filter] of cases) {
    it(`honours the filter: ${name}`, () => {
      const wanted = rows
        .filter((r) => oracle(r, filter, NOW))
        .map((r) => r.id)
        .sort();
      for (const query of ['note', '', 'words', 'unknownword']) {
        for (const fusion of ['weighted', 'rrf'] as const) {
          const got = ids(search(index, query, { filter, fusion })).sort();
          assert.deepEqual(got, wanted, `query ${JSON.stringify(query)}, ${fusion}`);
        }
      }
    });
  }
});

describe('rank: expiry', () => {
  const index = new UserIndex(1, [
    mem(1, 'milk expired', { expiresAt: NOW - 1 }),
    mem(2, 'milk expires now', { expiresAt: NOW, pinned: true }),
    mem(3, 'milk later', { expiresAt: NOW + 1 }),
    mem(4, 'bread', { expiresAt: NOW - DAY, pinned: true, sessionId: 's' }),
    mem(5, 'butter', { sessionId: 's' }),
    mem(6, 'cheese'),
  ]);

  it('never returns an expired memory: matched, pinned, neighbour, filled or unfiltered', () => {
    for (const query of ['milk', '', 'butter', 'zzz', 'milk bread butter cheese']) {
      for (const filter of [{}, { tags: [] }] as SearchFilter[]) {
        for (const fusion of ['weighted', 'rrf'] as const) {
          const got = ids(search(index, query, { filter, fusion, k: 100 }));
          const where = `query ${JSON.stringify(query)}, ${JSON.stringify(filter)}, ${fusion}`;
          for (const gone of [idOf(1), idOf(2), idOf(4)]) assert.ok(!got.includes(gone), where);
          assert.deepEqual([...got].sort(), [idOf(3), idOf(5), idOf(6)], where);
        }
      }
    }
  });

  it('stops returning a memory once its expiry passes', () => {
    assert.ok(ids(search(index, 'milk', { now: NOW - 2 })).includes(idOf(1)));
    assert.ok(!ids(search(index, 'milk', { now: NOW + 2 })).includes(idOf(3)));
  });
});

describe('rank: non-text signals and candidates', () => {
  it('ranks an empty query by the other signals: pinned and important first', () => {
    const index = new UserIndex(1, [
      mem(1, 'plain'),
      mem(2, 'important', { importance: 0.9 }),
      mem(3, 'pinned', { pinned: true }),
      mem(4, 'pinned and important', { pinned: true, importance: 0.9 }),
    ]);
    for (const query of ['', 'the what when did']) {
      assert.deepEqual(ids(search(index, query)), [idOf(4), idOf(3), idOf(2), idOf(1)]);
    }
  });

  it('ranks an empty query by recency and use when the rest is equal', () => {
    const index = new UserIndex(1, [
      mem(1, 'old', { createdAt: NOW - 90 * DAY, updatedAt: NOW - 90 * DAY }),
      mem(2, 'new', { createdAt: NOW - DAY }),
      mem(3, 'old but used', {
        createdAt: NOW - 90 * DAY,
        updatedAt: NOW - 90 * DAY,
        accessCount: 50,
      }),
    ]);
    const got = ids(search(index, ''));
    assert.equal(got[0], idOf(2));
    assert.ok(got.indexOf(idOf(3)) < got.indexOf(idOf(1)));
  });

  it('makes a pinned memory a candidate without a text match', () => {
    const index = new UserIndex(1, [
      mem(1, 'sushi dinner'),
      mem(2, 'my name is Ada', { pinned: true }),
      mem(3, 'unrelated', { importance: 1 }),
    ]);
    // A pinned weight above the text's puts it first: a filled memory could never be.
    const heavy = search(index, 'sushi', { weights: { ...DEFAULT_WEIGHTS, pinned: 5 }, k: 1 });
    assert.deepEqual(ids(heavy), [idOf(2)]);
    // With the defaults it follows the match, with its own full score (not capped as a fill).
    const got = search(index, 'sushi', { explain: true });
    assert.deepEqual(ids(got), [idOf(1), idOf(2), idOf(3)]);
    const pinnedOne = got[1] as Ranked;
    let sum = 0;
    for (const s of SIGNALS) sum += pinnedOne.explain?.signals[s].contribution ?? 0;
    assert.ok(Math.abs(pinnedOne.score - sum) < 1e-9, `${pinnedOne.score} vs ${sum}`);
  });

  it('fills: when fewer than k match, non-matching memories follow, scored ≤ every match', () => {
    const index = new UserIndex(1, [
      mem(1, 'guitar lesson'),
      mem(2, 'guitar strings', { createdAt: NOW - 300 * DAY }),
      mem(3, 'very important', { importance: 1, accessCount: 500 }),
      mem(4, 'recent', { createdAt: NOW }),
      mem(5, 'boring', { createdAt: NOW - 300 * DAY }),
    ]);
    // Text weight tiny: without the floor, the fill would outscore the matches.
    const got = search(index, 'guitar', { weights: { ...DEFAULT_WEIGHTS, text: 0.01 }, k: 5 });
    assert.equal(got.length, 5);
    assert.deepEqual(ids(got.slice(0, 2)).sort(), [idOf(1), idOf(2)]);
    const floor = Math.min(...got.slice(0, 2).map((r) => r.score));
    for (const r of got.slice(2)) assert.ok(r.score <= floor, `${r.row.id} ${r.score} > ${floor}`);
    // The fill is ordered by its own signals.
    assert.deepEqual(ids(search(index, 'guitar', { k: 5 }).slice(2)), [idOf(3), idOf(4), idOf(5)]);
    // And limited by k.
    assert.equal(search(index, 'guitar', { k: 3 }).length, 3);
  });

  it('fills only with memories that pass the filter', () => {
    const index = new UserIndex(1, [
      mem(1, 'guitar', { kind: 'event' }),
      mem(2, 'piano', { kind: 'event' }),
      mem(3, 'drums', { kind: 'fact' }),
    ]);
    assert.deepEqual(ids(search(index, 'guitar', { filter: { kind: 'event' } })), [
      idOf(1),
      idOf(2),
    ]);
  });

  it('gives context: a session neighbour of a strong match outranks an unrelated memory', () => {
    const index = new UserIndex(1, [
      mem(1, 'What did you eat in Tokyo?', { sessionId: 's' }),
      mem(2, 'Mostly ramen at the station', { sessionId: 's' }),
      mem(3, 'Some unrelated remark', { importance: 0.5 }),
      mem(4, 'Another session entirely', { sessionId: 'other' }),
    ]);
    const got = search(index, 'tokyo', { explain: true });
    assert.deepEqual(ids(got).slice(0, 2), [idOf(1), idOf(2)]);
    assert.ok(ids(got).indexOf(idOf(2)) < ids(got).indexOf(idOf(3)));
    const neighbour = got[1] as Ranked;
    assert.equal(neighbour.explain?.bm25, 0);
    assert.ok((neighbour.explain?.context ?? 0) > 0);
    assert.deepEqual(neighbour.explain?.matchedTerms, []);
    // Without context, the neighbour is only a fill: the unrelated but important one beats it.
    const plain = ids(search(index, 'tokyo', { context: 0 }));
    assert.ok(plain.indexOf(idOf(3)) < plain.indexOf(idOf(2)));
  });

  it('spreads context two steps each way, halving per step', () => {
    const index = new UserIndex(
      1,
      [1, 2, 3, 4, 5, 6, 7].map((n) =>
        mem(n, n === 4 ? 'the harbour at dawn' : `message number ${n}`, { sessionId: 's' }),
      ),
    );
    const got = search(index, 'harbour', { explain: true, k: 7 });
    const context = new Map(got.map((r) => [r.row.id, r.explain?.context ?? 0]));
    const at = (n: number): number => context.get(idOf(n)) ?? 0;
    assert.ok(at(3) > 0 && at(5) > 0);
    assert.ok(Math.abs(at(3) - at(5)) < 1e-12);
    assert.ok(Math.abs(at(2) - at(3) / 2) < 1e-12);
    assert.ok(Math.abs(at(6) - at(5) / 2) < 1e-12);
    assert.equal(at(1), 0);
    assert.equal(at(7), 0);
  });

  it('ranks by the query vector when given one', () => {
    const v = (...x: number[]) => new Float32Array(x);
    const index = new UserIndex(1, [
      mem(1, 'alpha', { embedding: v(1, 0, 0) }),
      mem(2, 'beta', { embedding: v(0, 1, 0) }),
      mem(3, 'gamma', { embedding: v(0.9, 0.1, 0) }),
      mem(4, 'delta', { embedding: null }),
    ]);
    const got = search(index, 'nothing matches', {
      queryVector: v(0, 1, 0),
      weights: { ...DEFAULT_WEIGHTS, vector: 1 },
      explain: true,
    });
    assert.equal(got[0]?.row.id, idOf(2));
    assert.ok(Math.abs((got[0]?.explain?.signals.vector.value ?? 0) - 1) < 1e-6);
    assert.equal(got.length, 4);
  });
});

describe('rank: explain and RRF', () => {
  const index = new UserIndex(1, [
    mem(1, 'running shoes for the marathon', {
      importance: 0.4,
      pinned: true,
      accessCount: 7,
      lastAccessedAt: NOW - 2 * DAY,
    }),
    mem(2, 'bought new running gear', { importance: 0.8 }),
    mem(3, 'a quiet evening'),
  ]);

  it('explains all six signals: contribution = value × weight, with the matched terms', () => {
    const weights: Weights = {
      text: 1.5,
      vector: 0.5,
      recency: 0.3,
      importance: 0.7,
      pinned: 0.2,
      use: 0.4,
    };
    const got = search(index, 'Runs marathon', { explain: true, weights });
    assert.equal(got[0]?.row.id, idOf(1));
    for (const r of got) {
      const e = r.explain;
      assert.ok(e, 'explanation present');
      assert.deepEqual(Object.keys(e.signals).sort(), [...SIGNALS].sort());
      let sum = 0;
      for (const s of SIGNALS) {
        const signal: SignalExplanation = e.signals[s];
        assert.equal(signal.weight, weights[s]);
        assert.ok(signal.value >= 0 && signal.value <= 1, `${s} ${signal.value}`);
        assert.ok(Math.abs(signal.contribution - signal.value * signal.weight) < 1e-12, s);
        sum += signal.contribution;
      }
      if (e.bm25 > 0) assert.ok(Math.abs(sum - r.score) < 1e-9, `${sum} vs ${r.score}`);
    }
    const first = got[0]?.explain;
    assert.deepEqual(first?.matchedTerms.sort(), ['marathon', 'run']);
    // The best text score normalizes to 1 (up to rounding: it is multiplied by 1 / max).
    assert.ok(Math.abs((first?.signals.text.value ?? 0) - 1) < 1e-12);
    assert.equal(first?.signals.pinned.value, 1);
    assert.equal(first?.signals.importance.value, 0.4);
    assert.equal(first?.signals.vector.value, 0);
    assert.ok((first?.bm25 ?? 0) > 0);
    const second = got.find((r) => r.row.id === idOf(2))?.explain;
    assert.deepEqual(second?.matchedTerms, ['run']);
    const third = got.find((r) => r.row.id === idOf(3))?.explain;
    assert.deepEqual(third?.matchedTerms, []);
    assert.equal(third?.signals.text.value, 0);
  });

  it('leaves out the explanation unless asked', () => {
    for (const r of search(index, 'running')) assert.equal(r.explain, undefined);
  });

  it('fuses by reciprocal rank: text alone gives 1 / (RRF_K + rank)', () => {
    const w = { text: 1, vector: 0, recency: 0, importance: 0, pinned: 0, use: 0 };
    const got = search(index, 'running marathon', { fusion: 'rrf', weights: w, k: 2 });
    assert.deepEqual(ids(got), [idOf(1), idOf(2)]);
    assert.ok(Math.abs((got[0]?.score ?? 0) - 1 / 61) < 1e-12);
    assert.ok(Math.abs((got[1]?.score ?? 0) - 1 / 62) < 1e-12);
  });

  it('fuses by reciprocal rank with the default weights: sorted, best match first', () => {
    const got = search(index, 'running marathon', { fusion: 'rrf', explain: true });
    assert.equal(got[0]?.row.id, idOf(1));
    assert.equal(got.length, 3);
    for (let i = 1; i < got.length; i++) {
      assert.ok((got[i - 1]?.score ?? 0) >= (got[i]?.score ?? 0));
    }
    for (const r of got) assert.ok(Number.isFinite(r.score) && r.score >= 0);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties on random memories.

const SESSIONS = [null, 's1', 's2', 's3'] as const;
const KINDS = ['fact', 'event', 'message'] as const;
const TAGS = ['red', 'green', 'blue'];

const rowSpec = fc.record({
  words: fc.array(fc.constantFrom(...VOCAB, 'the', 'and', 'running', 'runs'), { maxLength: 8 }),
  kind: fc.constantFrom(...KINDS),
  tags: fc.subarray(TAGS),
  sessionId: fc.constantFrom(...SESSIONS),
  agentId: fc.constantFrom(null, 'x', 'y'),
  pinned: fc.boolean(),
  importance: fc.double({ min: 0, max: 1, noNaN: true }),
  createdDaysAgo: fc.integer({ min: -1, max: 60 }),
  updatedLater: fc.integer({ min: 0, max: 30 }),
  expiresInDays: fc.oneof(
    { weight: 4, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.integer({ min: -5, max: 5 }) },
  ),
  deleted: fc.boolean(),
  accessCount: fc.nat({ max: 300 }),
  accessedDaysAgo: fc.option(fc.integer({ min: 0, max: 90 }), { nil: null }),
  embedding: fc.option(fc.tuple(fc.integer({ min: -3, max: 3 }), fc.integer({ min: -3, max: 3 })), {
    nil: null,
  }),
  version: fc.integer({ min: 1, max: 5 }),
});

type RowSpec = typeof rowSpec extends fc.Arbitrary<infer T> ? T : never;

function toRow(n: number, s: RowSpec): MemoryRow {
  const createdAt = NOW - s.createdDaysAgo * DAY;
  return mem(n, s.words.join(' '), {
    kind: s.kind,
    tags: s.tags,
    sessionId: s.sessionId,
    agentId: s.agentId,
    pinned: s.pinned,
    importance: s.importance,
    createdAt,
    updatedAt: createdAt + s.updatedLater * DAY,
    expiresAt: s.expiresInDays === null ? null : NOW + s.expiresInDays * DAY,
    deletedAt: s.deleted ? NOW - DAY : null,
    accessCount: s.accessCount,
    lastAccessedAt: s.accessedDaysAgo === null ? null : NOW - s.accessedDaysAgo * DAY,
    embedding: s.embedding === null ? null : new Float32Array(s.embedding),
    version: s.version,
  });
}

/** Random rows (a fifth of them deleted) given to the index in a random order. */
const rowsArb = fc
  .array(rowSpec, { maxLength: 40, size: 'medium' })
  .map((specs) => specs.map((s, n) => toRow(n, { ...s, deleted: s.deleted && n % 5 === 0 })))
  .chain((rows) => fc.shuffledSubarray(rows, { minLength: rows.length, maxLength: rows.length }));

const day = fc.integer({ min: -60, max: 10 }).map((d) => NOW + d * DAY);
/** Filters of one to three conditions (more would rarely let anything through). */
const filterArb: fc.Arbitrary<SearchFilter> = fc
  .record({
    kind: fc.constantFrom(...KINDS, 'other'),
    tags: fc.subarray(TAGS, { maxLength: 2 }),
    sessionId: fc.constantFrom('s1', 's2', 's3'),
    agentId: fc.constantFrom('x', 'y'),
    pinned: fc.boolean(),
    createdFrom: day,
    createdTo: day,
    updatedFrom: day,
    updatedTo: day,
  })
  .chain((all) =>
    fc
      .subarray(Object.keys(all) as Array<keyof typeof all>, { minLength: 1, maxLength: 3 })
      .map((keys): SearchFilter => Object.fromEntries(keys.map((key) => [key, all[key]]))),
  );

const weightArb = fc.oneof(fc.constant(0), fc.double({ min: 0, max: 10, noNaN: true }));
const weightsArb: fc.Arbitrary<Weights> = fc.record({
  text: weightArb,
  vector: weightArb,
  recency: weightArb,
  importance: weightArb,
  pinned: weightArb,
  use: weightArb,
});

const queryArb = fc
  .array(fc.constantFrom(...VOCAB, 'the', 'zzz', 'run', 'Tokyo'), { maxLength: 4 })
  .map((ws) => ws.join(' '));

const optionsArb = fc.record({
  k: fc.integer({ min: 1, max: 20 }),
  filter: fc.oneof(fc.constant({}), filterArb),
  weights: fc.oneof(fc.constant({ ...DEFAULT_WEIGHTS }), weightsArb),
  fusion: fc.constantFrom('weighted', 'rrf') as fc.Arbitrary<'weighted' | 'rrf'>,
  context: fc.constantFrom(0, DEFAULT_TEXT_RANKING.context, 1),
  coordination: fc.constantFrom(0, DEFAULT_TEXT_RANKING.coordination, 2),
  queryVector: fc.option(
    fc
      .tuple(fc.integer({ min: -3, max: 3 }), fc.integer({ min: -3, max: 3 }))
      .map(([a, b]) => new Float32Array([a, b])),
    { nil: null },
  ),
  explain: fc.boolean(),
});

/**
 * The scores of `got` are the first of `all`'s. Within 1e-9, not exactly: a path that sets the
 * commonest terms aside adds a memory's context up in another order (an ulp apart).
 */
function sameScores(got: Ranked[], all: Ranked[]): void {
  const want = all.slice(0, got.length).map((r) => r.score);
  assert.equal(got.length, want.length);
  got.forEach((r, i) => {
    assert.ok(Math.abs(r.score - (want[i] as number)) < 1e-9, `${i}: ${r.score} ≠ ${want[i]}`);
  });
}

describe('rank: properties on random memories', () => {
  it('scores are finite; ≤ k results, as many as pass; all pass; sorted; no duplicates', () => {
    fc.assert(
      fc.property(rowsArb, queryArb, optionsArb, (rows, query, over) => {
        const index = new UserIndex(1, rows);
        const o = options(over);
        const got = rank(index, termsOf(query), o);
        const passing = rows.filter((r) => oracle(r, o.filter, NOW));
        assert.ok(got.length <= o.k);
        assert.equal(got.length, Math.min(o.k, passing.length));
        const seen = new Set<string>();
        for (let i = 0; i < got.length; i++) {
          const r = got[i] as Ranked;
          assert.ok(Number.isFinite(r.score), `score ${r.score}`);
          assert.ok(oracle(r.row, o.filter, NOW), `${r.row.id} fails the filter`);
          assert.ok(!seen.has(r.row.id), `${r.row.id} twice`);
          seen.add(r.row.id);
          if (i > 0) assert.ok((got[i - 1] as Ranked).score >= r.score, `not sorted at ${i}`);
          if (o.explain) {
            assert.ok(r.explain);
            // Matched terms: query terms the memory's own text holds; BM25 > 0 exactly then.
            const own = new Set(termsOf(indexedText(r.row)));
            const asked = new Set(termsOf(query));
            for (const t of r.explain.matchedTerms) assert.ok(own.has(t) && asked.has(t), t);
            assert.equal(r.explain.matchedTerms.length > 0, r.explain.bm25 > 0);
            for (const s of SIGNALS) {
              const e = r.explain.signals[s];
              assert.ok(Number.isFinite(e.value) && e.value >= 0 && e.value <= 1, `${s}`);
              assert.ok(Math.abs(e.contribution - e.value * e.weight) < 1e-9, s);
            }
            // The text signal comes with every result (the preload keeps those above 0).
            assert.equal(r.text, r.explain.signals.text.value);
          } else assert.equal(r.explain, undefined);
          assert.ok(r.text >= 0 && r.text <= 1, `text ${r.text}`);
        }
        // Ranking again gives the same answer (nothing left behind in the scratch arrays).
        assert.deepEqual(rank(index, termsOf(query), o), got);
      }),
      { numRuns: 150 },
    );
  });

  it("weighted fusion's pruned top k is the top k of every candidate scored (bounds never cut a winner)", () => {
    // Small k over up to 40 memories: most candidates meet the bar.
    const k = fc.integer({ min: 1, max: 3 });
    fc.assert(
      fc.property(rowsArb, queryArb, optionsArb, k, fc.nat(40), fc.boolean(), (...args) => {
        const [some, query, over, k, touches, unpinned] = args;
        // Without pinned memories, the pinned weight leaves no slack to hide a bound too low.
        const rows = unpinned ? some.map((r) => ({ ...r, pinned: false })) : some;
        const index = new UserIndex(1, rows);
        // Accesses raise the index's use bound after the build, as searches do.
        for (let i = 0; i < touches && rows.length > 0; i++) {
          index.touch((rows[i % rows.length] as MemoryRow).id, NOW);
        }
        const o = options({ ...over, k, fusion: 'weighted', explain: false });
        const got = rank(index, termsOf(query), o);
        // k past every memory: nothing is ever below the bar, every candidate is scored.
        const all = rank(index, termsOf(query), { ...o, k: rows.length + 1 });
        sameScores(got, all);
      }),
      { numRuns: 400 },
    );
  });

  it('setting the commonest terms aside gives the top k of every candidate scored', () => {
    // A big LoCoMo user's shape: a name in most memories, a rarer word in a few, sessions.
    const shaped = fc
      .array(fc.tuple(rowSpec, fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 11 })), {
        minLength: 12,
        maxLength: 120,
      })
      .map((specs) =>
        specs.map(([spec, common, rare], n) => {
          const words = [...spec.words.slice(0, 3)];
          if (common > 0) words.push('john');
          if (rare === 0) words.push('whiteboard');
          if (rare === 1) words.push('blog');
          return toRow(n, { ...spec, words, deleted: spec.deleted && n % 7 === 0 });
        }),
      );
    const query = fc.constantFrom('john whiteboard', 'whiteboard john blog', 'john blog apple');
    const over = fc.record({
      k: fc.integer({ min: 1, max: 5 }),
      filter: fc.oneof(
        { weight: 3, arbitrary: fc.constant({}) },
        { weight: 1, arbitrary: filterArb },
      ),
      weights: fc.oneof(
        { weight: 3, arbitrary: fc.constant({ ...DEFAULT_WEIGHTS }) },
        { weight: 1, arbitrary: weightsArb },
      ),
      context: fc.constantFrom(0, DEFAULT_TEXT_RANKING.context, 1),
      coordination: fc.constantFrom(0, DEFAULT_TEXT_RANKING.coordination, 2),
      explain: fc.boolean(),
    });
    const before = rankCounts.rarerTerms;
    const runs = 400;
    fc.assert(
      fc.property(shaped, query, over, (rows, q, more) => {
        const index = new UserIndex(1, rows);
        const o = options({ ...more, fusion: 'weighted' });
        const got = rank(index, termsOf(q), o);
        // k past every memory: fewer candidates than k, every candidate is scored.
        sameScores(got, rank(index, termsOf(q), { ...o, k: rows.length + 1 }));
      }),
      { numRuns: runs },
    );
    const taken = rankCounts.rarerTerms - before;
    assert.ok(taken >= runs / 4, `the set-aside path answered ${taken} of ${runs} rankings`);
  });

  it('a memory that matches the query never ranks below one that matches nothing', () => {
    const fusion = fc.constantFrom('weighted', 'rrf') as fc.Arbitrary<'weighted' | 'rrf'>;
    const k = fc.integer({ min: 1, max: 20 });
    fc.assert(
      fc.property(rowsArb, queryArb, k, fusion, (rows, query, k, fusion) => {
        const index = new UserIndex(1, rows);
        const o = options({ k, context: 0, explain: true, fusion });
        const got = rank(index, termsOf(query), o);
        let seenNonMatch = false;
        for (const r of got) {
          const matched = (r.explain?.bm25 ?? 0) > 0;
          if (!matched && !r.row.pinned) seenNonMatch = true;
          else if (matched) assert.ok(!seenNonMatch, `${r.row.id} matched but follows a fill`);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('read-your-writes: a new or updated memory with a unique word ranks first for it', () => {
    fc.assert(
      fc.property(
        rowsArb,
        fc.nat(),
        fc.array(fc.constantFrom(...VOCAB), { maxLength: 5 }),
        fc.integer({ min: 1, max: 20 }),
        fc.boolean(),
        (rows, pick, extra, k, fresh) => {
          const index = new UserIndex(1, rows);
          const held = rows.filter((r) => index.slotOf(r.id) >= 0);
          const base = held[pick % Math.max(1, held.length)];
          const content = [...extra, 'zebra', ...extra].join(' ');
          const row =
            fresh || base === undefined
              ? mem(10_000, content, { createdAt: NOW, updatedAt: NOW, sessionId: 's1' })
              : next(base, { content, expiresAt: null, updatedAt: NOW });
          index.upsert(row);
          const got = rank(index, termsOf('zebra'), options({ k }));
          assert.equal(got[0]?.row.id, row.id);
          assert.equal(got[0]?.row.content, content);
          assert.equal(got.filter((r) => r.row.id === row.id).length, 1);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('after random puts, deletes and stale replays, ranks like a fresh index (compaction)', () => {
    const opArb = fc.record({
      n: fc.nat({ max: 119 }),
      op: fc.constantFrom('put', 'put', 'put', 'delete', 'delete', 'replay'),
      pick: fc.nat(),
      spec: rowSpec,
    });
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 150, maxLength: 400, size: 'max' }),
        queryArb,
        optionsArb,
        (ops, query, over) => {
          const index = new UserIndex(1);
          const latest = new Map<string, MemoryRow>();
          const history = new Map<string, MemoryRow[]>();
          const live = new Map<string, MemoryRow>();
          for (const { n, op, pick, spec } of ops) {
            const id = idOf(n);
            const prev = latest.get(id);
            const past = history.get(id) ?? [];
            let row: MemoryRow;
            if (op === 'replay') {
              const old = past[pick % Math.max(1, past.length)];
              if (old === undefined) continue;
              row = old;
            } else if (op === 'delete') {
              if (prev === undefined || prev.deletedAt !== null) continue;
              row = deleted(prev);
            } else {
              row = toRow(n, { ...spec, deleted: false, version: (prev?.version ?? 0) + 1 });
            }
            index.upsert(row);
            if (row !== past.at(-1) && !past.includes(row)) history.set(id, [...past, row]);
            // The model: a version older than the latest is ignored; otherwise it replaces.
            if (prev !== undefined && prev.version > row.version) continue;
            latest.set(id, row);
            live.delete(id);
            if (row.deletedAt === null) live.set(id, row);
          }
          assert.equal(index.docCount, live.size);
          const empty = index.slots - index.docCount;
          assert.ok(empty <= Math.max(64, index.slots * 0.25), `${empty} of ${index.slots}`);
          const fresh = new UserIndex(1, live.values());
          for (const s of ['s1', 's2', 's3']) {
            assert.deepEqual(sessionOrder(index, s), sessionOrder(fresh, s), s);
          }
          const o = options({ ...over, explain: false });
          for (const q of [query, '']) {
            const a = rank(index, termsOf(q), o).map((r) => [r.row.id, r.row.version, r.score]);
            const w = rank(fresh, termsOf(q), o).map((r) => [r.row.id, r.row.version, r.score]);
            assert.deepEqual(a, w, JSON.stringify(q));
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('an incrementally built index ranks like one built at once', () => {
    fc.assert(
      fc.property(rowsArb, rowsArb, queryArb, optionsArb, (first, second, query, over) => {
        // Second batch: newer versions of some of the first batch's memories.
        const updates = second
          .filter((r) => first.some((f) => f.id === r.id))
          .map((r) => ({ ...r, version: r.version + 5 }));
        const index = new UserIndex(1, first);
        for (const r of updates) index.upsert(r);
        const live = new Map<string, MemoryRow>();
        for (const r of [...first, ...updates]) {
          live.delete(r.id);
          if (r.deletedAt === null) live.set(r.id, r);
        }
        const fresh = new UserIndex(1, live.values());
        const o = options({ ...over, explain: false });
        const a = rank(index, termsOf(query), o).map((r) => [r.row.id, r.score]);
        const w = rank(fresh, termsOf(query), o).map((r) => [r.row.id, r.score]);
        assert.deepEqual(a, w);
      }),
      { numRuns: 100 },
    );
  });
});
