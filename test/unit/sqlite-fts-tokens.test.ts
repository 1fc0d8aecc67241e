/**
 * SQLite's full-text index keeps one token per (tenant, user, term) (fts-tokens.ts), so that a
 * query reads its own user's postings, and a database made before that (migration 5) is
 * rebuilt into it with its live memories searchable.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { ftsBody, ftsMatch } from '../../src/store/sqlite/fts-tokens.ts';
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite/sqlite-migrations.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { memoryRow } from '../helpers/rows.ts';

const dir = mkdtempSync(join(tmpdir(), 'engram-fts-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const tokens = (body: string): string[] => body.split(' ').filter((t) => t !== '');

describe('full-text tokens', () => {
  it('are one per user and term, the same for the same user, tenant and stem', () => {
    const alice = tokens(ftsBody('acme', 'alice', 'Zebra zebras', '[]', 'fact'));
    // "zebra" and "zebras" share a stem, counted twice (BM25 reads term frequencies); the kind
    // is indexed too.
    assert.equal(alice.length, 3);
    assert.equal(alice[0], alice[1]);
    assert.deepEqual(tokens(ftsBody('acme', 'alice', 'zebra', '[]', 'fact')), [alice[0], alice[2]]);
    const others = [
      ftsBody('acme', 'bob', 'zebra', '[]', 'fact'),
      ftsBody('other', 'alice', 'zebra', '[]', 'fact'),
      // Tenant and user that run together into the same text.
      ftsBody('acm', 'ealice', 'zebra', '[]', 'fact'),
    ];
    for (const body of others) {
      for (const t of tokens(body)) assert.ok(!alice.includes(t), body);
    }
    for (const t of alice) assert.match(t, /^k[0-9a-f]{16}$/);
  });

  it('index content, tags and kind, and match a query by the same stems', () => {
    const body = ftsBody('acme', 'alice', 'She was running', '["Travel","japan"]', 'preference');
    const has = (word: string) => {
      const match = ftsMatch('acme', 'alice', [word]);
      return match !== null && tokens(body).includes(match);
    };
    for (const word of ['runs', 'running', 'travel', 'Japan', 'preferences']) {
      assert.ok(has(word), word);
    }
    assert.ok(!has('walking'));
    assert.equal(ftsMatch('acme', 'alice', ['the', 'was', '"', '*']), null, 'stop words only');
    assert.equal(ftsMatch('acme', 'alice', ['run', 'runs', 'zebra'])?.split(' OR ').length, 2);
  });

  it('keep each user apart in the index: one term per user for a word they share', async () => {
    const store = new SqliteStore(join(dir, 'vocab.db'));
    await store.migrate();
    await store.insertMemories([
      memoryRow({ userId: 'u1', content: 'zebra' }),
      memoryRow({ userId: 'u2', content: 'zebra' }),
      memoryRow({ userId: 'u2', content: 'zebra crossing' }),
    ]);
    await store.close();
    const db = new Database(join(dir, 'vocab.db'));
    db.exec("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, 'memories_fts', 'row')");
    const zebra = new Set([
      ...tokens(ftsBody('acme', 'u1', 'zebra', '[]', 'x')),
      ...tokens(ftsBody('acme', 'u2', 'zebra', '[]', 'x')),
    ]);
    const terms = db.prepare('SELECT term, doc FROM temp.vocab').all() as Array<{
      term: string;
      doc: number;
    }>;
    db.close();
    // u1: zebra, fact; u2: zebra (2 memories), crossing, fact (2 memories).
    assert.equal(terms.length, 5);
    const shared = terms.filter((t) => zebra.has(t.term));
    assert.deepEqual(shared.map((t) => t.doc).sort(), [1, 2]);
  });
});

describe('migration 5 (full-text tokens per user)', () => {
  it('rebuilds the index of a database made before it: live memories are found, per user', async () => {
    const file = join(dir, 'v4.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec(
      'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
    );
    for (const m of SQLITE_MIGRATIONS.filter((m) => m.version <= 4)) {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, 0);
    }
    const insert = db.prepare(
      `INSERT INTO memories (tenant, id, user_id, content, kind, tags, importance, created_at,
         updated_at, deleted_at, version) VALUES ('acme', ?, ?, ?, 'fact', ?, 0.5, 1, 1, ?, 1)`,
    );
    insert.run('m1', 'alice', 'the kayak sleeps', '[]', null);
    insert.run('m2', 'alice', 'kayaks everywhere', '["arctic"]', null);
    insert.run('m3', 'alice', 'a deleted kayak', '[]', 5);
    insert.run('m4', 'bob', 'kayak too', '[]', null);
    db.close();

    const store = new SqliteStore(file);
    assert.equal(await store.migrate(), SQLITE_MIGRATIONS.length - 4);
    const found = async (userId: string, words: string[]) =>
      (await store.searchText('acme', userId, words, 10, 0)).map((c) => c.row.id).sort();
    assert.deepEqual(await found('alice', ['kayak']), ['m1', 'm2']);
    assert.deepEqual(await found('alice', ['arctic']), ['m2']);
    assert.deepEqual(await found('bob', ['kayak']), ['m4']);
    // Writes after the migration go through the new triggers.
    await store.insertMemories([memoryRow({ id: 'm5', userId: 'bob', content: 'one more kayak' })]);
    assert.deepEqual(await found('bob', ['kayaks']), ['m4', 'm5']);
    await store.close();
  });
});
