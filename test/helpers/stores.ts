import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { SqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import { pgSchema } from './services.ts';

/** A store opened for one test, with its disposal. */
export interface TestStore {
  store: Store;
  dispose: () => Promise<void>;
}

/** A migrated SQLite store in a fresh temporary directory (default options: a writer thread). */
export async function openSqlite(
  options: SqliteStoreOptions = {},
): Promise<TestStore & { file: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'engram-test-'));
  const file = join(dir, 'engram.db');
  const store = new SqliteStore(file, options);
  await store.migrate();
  return {
    store,
    file,
    dir,
    dispose: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A migrated PostgreSQL store in a fresh schema of the test server. */
export async function openPostgres(): Promise<TestStore & { url: string }> {
  const schema = await pgSchema();
  const store = new PostgresStore({
    url: schema.url,
    poolMax: 4,
    connectTimeoutMs: 2000,
    statementTimeoutMs: 5000,
  });
  await store.migrate();
  return {
    store,
    url: schema.url,
    dispose: async () => {
      await store.close();
      await schema.drop();
    },
  };
}
