import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { loadConfig } from '../../src/config.ts';
import type { MemoryRow } from '../../src/memory/memory-types.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { WriterThread } from '../../src/store/sqlite/writer-thread.ts';
import { isStoreUnavailable, StoreUnavailable } from '../../src/store/store.ts';
import { memoryRow } from '../helpers/rows.ts';
import { openSqlite } from '../helpers/stores.ts';
import { storeContract } from './store-contract.ts';

storeContract('sqlite', openSqlite);

describe('sqlite page cache', () => {
  it('sizes the writer and the reader as configured, and leaves the build default otherwise', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'engram-cache-'));
    const sized = new SqliteStore(join(dir, 'sized.db'), { cacheKiB: 1024 });
    const plain = new SqliteStore(join(dir, 'plain.db'));
    try {
      await sized.migrate();
      await plain.migrate();
      assert.deepEqual(await sized.cacheSizesKiB(), { writer: 1024, reader: 1024 });
      assert.deepEqual(await plain.cacheSizesKiB(), { writer: 16_000, reader: 16_000 });
    } finally {
      await sized.close();
      await plain.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes the cache size and the log bound from the environment, and refuses ones too small', () => {
    const config = loadConfig({ ENGRAM_SQLITE_CACHE_KIB: '2048' });
    assert.equal(config.store.kind === 'sqlite' && config.store.cacheKiB, 2048);
    const fallback = loadConfig({});
    assert.equal(fallback.store.kind === 'sqlite' && fallback.store.cacheKiB, 4096);
    assert.throws(() => loadConfig({ ENGRAM_SQLITE_CACHE_KIB: '16' }), /ENGRAM_SQLITE_CACHE_KIB/);
    assert.equal(fallback.store.kind === 'sqlite' && fallback.store.walMaxBytes, 268_435_456);
    const bounded = loadConfig({ ENGRAM_SQLITE_WAL_MAX_BYTES: '4194304' });
    assert.equal(bounded.store.kind === 'sqlite' && bounded.store.walMaxBytes, 4_194_304);
    assert.throws(
      () => loadConfig({ ENGRAM_SQLITE_WAL_MAX_BYTES: '1000' }),
      /ENGRAM_SQLITE_WAL_MAX_BYTES/,
    );
  });
});

describe('sqlite query plans', () => {
  it('counts live memories from an index alone (no row read per memory)', async () => {
    const { store, dispose } = await openSqlite();
    try {
      const plan = await store.explain('countLiveMemories');
      assert.match(plan, /COVERING INDEX memories_live/);
    } finally {
      await dispose();
    }
  });
});

storeContract('sqlite, writer on the event loop', () => openSqlite({ writerThread: false }));

describe('sqlite writer thread', () => {
  const rowsIn = (file: string): number => {
    const db = new Database(file, { readonly: true });
    try {
      return (db.prepare('SELECT count(*) AS n FROM memories').get() as { n: number }).n;
    } finally {
      db.close();
    }
  };

  it("carries SQLite's result codes and the store's own errors back to the caller", async () => {
    const { store, dispose } = await openSqlite();
    try {
      const row = memoryRow();
      await store.insertMemories([row]);
      await assert.rejects(store.insertMemories([row]), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'SQLITE_CONSTRAINT_PRIMARYKEY');
        assert.equal(isStoreUnavailable(err), false);
        return true;
      });
    } finally {
      await dispose();
    }
  });

  it('a thread that dies fails the calls it had not answered, is reported, and is started again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'engram-writer-'));
    const file = join(dir, 'engram.db');
    const failures: unknown[] = [];
    const thread = new WriterThread(file, {
      onFailure: (err) => failures.push(err),
      restartAfterMs: 0,
    });
    try {
      await thread.call('migrate');
      const acked = Array.from({ length: 50 }, () => memoryRow());
      await thread.call('insertMemories', acked);
      const big = Array.from({ length: 20_000 }, (_, i) =>
        memoryRow({ content: `memory ${i} ${'lorem ipsum '.repeat(20)}` }),
      );
      const inFlight = thread.call('insertMemories', big);
      await thread.terminate();
      await assert.rejects(inFlight, StoreUnavailable);
      assert.equal(failures.length, 1);
      assert.ok(failures[0] instanceof StoreUnavailable);
      // Nothing of the batch was committed (one transaction); what was acknowledged is there.
      assert.equal(rowsIn(file), 50);
      // The next call starts a new thread.
      await thread.call('insertMemories', [memoryRow()]);
      assert.equal(rowsIn(file), 51);
      assert.ok(thread.stats().walFlushes.count >= 1);
      assert.equal(failures.length, 1);
    } finally {
      await thread.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('does not start a thread again that died young (no crash loop): its calls fail fast', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'engram-writer-'));
    const thread = new WriterThread(join(dir, 'engram.db'), { restartAfterMs: 60_000 });
    try {
      await thread.call('migrate');
      await thread.call('ping');
      await thread.terminate();
      await assert.rejects(thread.call('insertMemories', [memoryRow()]), StoreUnavailable);
      // The store's ping (the readiness probe's) goes through the thread: it fails alike.
      await assert.rejects(thread.call('ping'), StoreUnavailable);
    } finally {
      await thread.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails a call whose values cannot cross to the thread, and goes on', async () => {
    const { store, dispose } = await openSqlite();
    try {
      const bad = { ...memoryRow(), metadata: { f: () => 1 } } as unknown as MemoryRow;
      await assert.rejects(store.insertMemories([bad]), { name: 'DataCloneError' });
      const good = memoryRow();
      await store.insertMemories([good]);
      assert.equal((await store.getMemory('acme', good.id))?.id, good.id);
    } finally {
      await dispose();
    }
  });

  it('close lets the calls in progress finish first', async () => {
    const { store, file, dispose } = await openSqlite();
    const rows = Array.from({ length: 2_000 }, () => memoryRow());
    // A batch (its own transaction) and small writes (a group commit's).
    const writing = [
      store.insertMemories(rows),
      ...Array.from({ length: 5 }, () => store.insertMemories([memoryRow()])),
    ];
    await store.close();
    await Promise.all(writing);
    assert.equal(rowsIn(file), 2_005);
    await dispose();
  });

  it('is off with ENGRAM_SQLITE_WRITER_THREAD=false, on by default', () => {
    const on = loadConfig({});
    assert.equal(on.store.kind === 'sqlite' && on.store.writerThread, true);
    const off = loadConfig({ ENGRAM_SQLITE_WRITER_THREAD: 'false' });
    assert.equal(off.store.kind === 'sqlite' && off.store.writerThread, false);
    assert.throws(
      () => loadConfig({ ENGRAM_SQLITE_WRITER_THREAD: 'maybe' }),
      /ENGRAM_SQLITE_WRITER_THREAD/,
    );
  });
});
