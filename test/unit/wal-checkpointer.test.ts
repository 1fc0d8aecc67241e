/**
 * Checkpoints off the event loop (wal-checkpointer.ts): a worker thread copies the write-ahead
 * log into the database file while the writer's own checkpoints are off; when the worker cannot
 * run, the store is told so (it checkpoints on its own again).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { WalCheckpointer } from '../../src/store/sqlite/wal-checkpointer.ts';
import { memoryRow } from '../helpers/rows.ts';

const dir = mkdtempSync(join(tmpdir(), 'engram-checkpoint-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A WAL database whose writer never checkpoints, with `rows` rows committed. */
function writer(name: string, rows: number): { file: string; db: Database.Database } {
  const file = join(dir, name);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO t (body) VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run('x'.repeat(500));
  })();
  return { file, db };
}

/** Rows of table `table` in the database file alone (a copy without its log). */
function rowsInFile(file: string, table = 't'): number {
  const copy = `${file}.copy`;
  copyFileSync(file, copy);
  const db = new Database(copy, { readonly: true });
  try {
    const exists = db.prepare('SELECT count(*) AS n FROM sqlite_master WHERE name = ?').get(table);
    if ((exists as { n: number }).n === 0) return 0;
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
    rmSync(copy, { force: true });
  }
}

describe('WalCheckpointer', () => {
  it('copies committed frames into the database file from its worker', async () => {
    const { file, db } = writer('a.db', 2_000);
    assert.equal(rowsInFile(file), 0, 'with checkpoints off, the rows are only in the log');
    assert.ok(statSync(`${file}-wal`).size > 1_000_000);
    const failures: unknown[] = [];
    const checkpointer = new WalCheckpointer(file, 20, (err) => failures.push(err));
    for (let i = 0; i < 100 && checkpointer.stats.frames === 0; i++) await sleep(20);
    assert.ok(checkpointer.stats.frames > 0, 'the worker checkpointed');
    assert.equal(rowsInFile(file), 2_000, 'the database file holds every row');
    // Later commits are checkpointed too, and the last ones at stop.
    db.prepare('INSERT INTO t (body) VALUES (?)').run('late');
    await checkpointer.stop();
    assert.equal(rowsInFile(file), 2_001);
    assert.deepEqual(failures, []);
    assert.equal(checkpointer.stats.failed, false);
    db.close();
  });

  it("the store's writes reach the database file through the worker, the writer never checkpoints", async () => {
    const file = join(dir, 'store.db');
    const store = new SqliteStore(file);
    await store.migrate();
    // Before any write through the store, SQLite's own checkpoints are still on: the
    // migrations are in the file.
    const before = rowsInFile(file, 'memories');
    assert.equal(before, 0);
    await store.insertMemories([memoryRow({ content: 'first' }), memoryRow({ content: 'second' })]);
    // A two-row commit is far below SQLite's 1,000-page automatic checkpoint: only the worker
    // can have put it into the file.
    let inFile = 0;
    for (let i = 0; i < 100 && inFile < 2; i++) {
      await sleep(20);
      inFile = rowsInFile(file, 'memories');
    }
    assert.equal(inFile, 2);
    await store.close();
  });

  it('a store whose worker fails reports it once and goes on writing, checkpointing itself', async () => {
    const file = join(dir, 'orphan.db');
    const failures: unknown[] = [];
    const store = new SqliteStore(file, { onCheckpointFailure: (err) => failures.push(err) });
    await store.migrate();
    const list = () => store.listMemories('acme', { userId: 'alice', limit: 10, now: Date.now() });
    assert.deepEqual(await list(), []); // opens the reader connection
    // The open connections keep the unlinked file; the worker, opening it by name, cannot.
    rmSync(file);
    await store.insertMemories([memoryRow({ content: 'first' })]);
    for (let i = 0; i < 100 && failures.length === 0; i++) await sleep(20);
    assert.equal(failures.length, 1);
    // Writes go on being acknowledged (the writer checkpoints by itself again).
    await store.insertMemories([memoryRow({ content: 'second' })]);
    assert.equal((await list()).length, 2);
    await store.close();
    assert.equal(failures.length, 1);
  });

  it('bounds the log under back-to-back batch imports: writes wait for a checkpoint of all of it', async () => {
    const file = join(dir, 'bounded.db');
    const bound = 512 * 1024;
    // The worker's own checkpoints are a minute apart: only the bound's can copy the log.
    const store = new SqliteStore(file, { walMaxBytes: bound, checkpointIntervalMs: 60_000 });
    await store.migrate();
    let largest = 0;
    for (let batch = 0; batch < 40; batch++) {
      const rows = Array.from({ length: 50 }, (_, i) =>
        memoryRow({ content: `batch ${batch} memory ${i} ${'lorem ipsum '.repeat(80)}` }),
      );
      await store.insertMemories(rows);
      largest = Math.max(largest, statSync(`${file}-wal`).size);
      assert.equal(store.stats().walBytes, statSync(`${file}-wal`).size);
      // The store looks at the log's size at most every 50 ms.
      await sleep(60);
    }
    // Unbounded, the log would hold all 2,000 memories (≈ 8 MB); bounded, it is cut back
    // each time it passes the bound, so it never holds much more than one batch beyond it.
    assert.ok(largest < bound * 2.5, `the log reached ${largest} B`);
    const { walWaits } = store.stats();
    assert.ok(walWaits.count > 0, 'writes waited for the log to be checkpointed');
    const listed = await store.listMemories('acme', { userId: 'alice', limit: 1, now: Date.now() });
    assert.equal(listed.length, 1);
    await store.close();
    assert.equal(rowsInFile(file, 'memories'), 2_000, 'every acknowledged memory is in the file');
  });

  it('reports a worker that cannot open the database, once', async () => {
    const failures: unknown[] = [];
    const checkpointer = new WalCheckpointer(join(dir, 'missing', 'x.db'), 20, (err) =>
      failures.push(err),
    );
    for (let i = 0; i < 100 && failures.length === 0; i++) await sleep(20);
    await sleep(50);
    assert.equal(failures.length, 1);
    assert.equal(checkpointer.stats.failed, true);
    await checkpointer.stop();
  });
});
