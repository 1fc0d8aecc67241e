import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
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
      assert.deepEqual(sized.cacheSizesKiB(), { writer: 1024, reader: 1024 });
      assert.deepEqual(plain.cacheSizesKiB(), { writer: 16_000, reader: 16_000 });
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
