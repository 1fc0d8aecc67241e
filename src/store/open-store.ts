import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { PostgresStore } from './postgres/postgres-store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import type { Store } from './store.ts';

/** Opens the store the configuration names (SQLite by default, PostgreSQL with DATABASE_URL). */
export function openStore(config: Config['store'], logger: Logger): Store {
  if (config.kind === 'sqlite') {
    return new SqliteStore(config.file, {
      cacheKiB: config.cacheKiB,
      walMaxBytes: config.walMaxBytes,
      writerThread: config.writerThread,
      onCheckpointFailure: (err) =>
        logger.error({ err }, 'SQLite checkpoint worker failed: the writer checkpoints by itself'),
      onWriterFailure: (err) =>
        logger.error({ err }, 'SQLite writer thread stopped: started again at the next write'),
    });
  }
  return new PostgresStore({
    url: config.url,
    poolMax: config.poolMax,
    connectTimeoutMs: config.connectTimeoutMs,
    statementTimeoutMs: config.statementTimeoutMs,
    logger,
  });
}
