import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type {
  AccessDelta,
  ActivityDelta,
  ApiKeyRow,
  HistoryOp,
  IdempotencyRecord,
  MemoryRow,
} from '../../memory/memory-types.ts';
import type { SessionActivity, SessionRow, TimeoutModelRow } from '../../sessions/session-types.ts';
import { yieldToLoop } from '../../util/yield.ts';
import {
  ACCESS_CHUNK,
  activityValues,
  embeddingToBlob,
  latestModels,
  MEMORY_COLUMNS,
  mergeAccess,
  mergeHours,
  type Raw,
  SESSION_COLUMNS,
  sessionValues,
  snapshotJson,
  toSession,
} from '../row-mapping.ts';
import {
  IdempotencyKeyTaken,
  type SessionEnd,
  type SqliteStats,
  StoreUnavailable,
} from '../store.ts';
import { FTS_BODY_FUNCTION, ftsBody } from './fts-tokens.ts';
import { GroupCommit, type Outcome } from './group-commit.ts';
import { SQLITE_MIGRATIONS } from './sqlite-migrations.ts';
import { WalCheckpointer } from './wal-checkpointer.ts';
import { WalSync } from './wal-sync.ts';

/** Rows per step of a large batch insert: each step stays within a few milliseconds. */
const INSERT_CHUNK = 100;

// max() of SQLite returns NULL when an argument is NULL: a first access sets the time.
const RECORD_ACCESS_SQL = `UPDATE memories SET access_count = access_count + ?,
    last_accessed_at = max(coalesce(last_accessed_at, ?), ?)
  WHERE tenant = ? AND id = ?`;

const TOUCH_SESSION_SQL = `UPDATE sessions SET last_activity_at = ?, expires_at = ?, timeout_ms = ?,
    timeout_basis = ?, message_count = message_count + ?
  WHERE tenant = ? AND id = ? AND state = 'active'
  RETURNING ${SESSION_COLUMNS}`;

// The compare-and-set: only the caller that still finds the session active, with the messages
// it summarized and no more, changes it.
const END_SESSION_SQL = `UPDATE sessions SET state = ?, ended_at = ?, expires_at = ?, summary_id = ?
  WHERE tenant = ? AND id = ? AND state = 'active' AND message_count = ?
  RETURNING ${SESSION_COLUMNS}`;

// The compare-and-set of an edit: the row changes only while it is at the version the edit was
// made from (the caller read it on another connection, outside this transaction).
const UPDATE_MEMORY_SQL = `UPDATE memories SET content = ?, kind = ?, tags = ?, metadata = ?,
    importance = ?, pinned = ?, updated_at = ?, expires_at = ?, deleted_at = ?, version = ?,
    embedding = ?
  WHERE tenant = ? AND id = ? AND version = ?`;

/** The SQL of the deletions whose plans the index test reads (they run here). */
export const DELETE_SQL = {
  eraseUserChunk:
    'DELETE FROM memories WHERE rowid IN (SELECT rowid FROM memories WHERE tenant = ? AND user_id = ? LIMIT ?)',
  purgeExpired:
    'DELETE FROM memories WHERE rowid IN (SELECT rowid FROM memories WHERE expires_at <= ? LIMIT ?)',
  purgeDeleted:
    'DELETE FROM memories WHERE rowid IN (SELECT rowid FROM memories WHERE deleted_at <= ? LIMIT ?)',
} as const;

/** How often the checkpoint worker copies the log into the database file. */
const CHECKPOINT_INTERVAL_MS = 250;
/** SQLite's own automatic checkpoint (pages of log), used again when the worker fails. */
const AUTOCHECKPOINT_PAGES = 1000;

/** Longest the write-ahead log may grow before writes wait for a checkpoint (default). */
export const WAL_MAX_BYTES = 268_435_456;
/** The log's size is looked at most this often (a stat of the file). */
const WAL_LOOK_MS = 50;

/** Options of the writer connection. */
export interface SqliteWritesOptions {
  /** Page cache of the connection in KiB (default: the build's, 16,000 KiB). */
  cacheKiB?: number;
  /**
   * Size of the write-ahead log past which writes wait until the checkpoint worker has copied
   * all of it; the log file is cut back to this size when it starts over. @default 256 MiB
   */
  walMaxBytes?: number;
  /** Period of the checkpoint worker's checkpoints. @default 250 */
  checkpointIntervalMs?: number;
  /** Told when the checkpoint worker fails. */
  onCheckpointFailure?: (err: unknown) => void;
  /**
   * Whether a transaction waits for the previous one's flush before it starts (the writer
   * thread), rather than running while that flush is in progress (on the event loop). @default false
   */
  commitAfterFlush?: boolean;
}

/** The writer's share of {@link SqliteStats}: what only the writing side knows. */
export type WriteStats = Pick<SqliteStats, 'walWaits' | 'walFlushes' | 'checkpoints'>;

/** The size of a database's log file now; 0 without one (none yet, or an in-memory database). */
export function walFileBytes(file: string): number {
  if (file === ':memory:') return 0;
  try {
    return statSync(`${file}-wal`).size;
  } catch {
    return 0;
  }
}

/** Sets a connection's page cache to `cacheKiB` (a negative cache_size is KiB). */
export function sizeCache(db: Database.Database, cacheKiB: number | undefined): void {
  if (cacheKiB !== undefined) db.pragma(`cache_size = ${-Math.round(cacheKiB)}`);
}

/** A connection's page cache in KiB, as SQLite reports it. */
export function cacheKiBOf(db: Database.Database): number {
  const size = db.pragma('cache_size', { simple: true }) as number;
  // Negative: KiB; positive: pages.
  return size < 0 ? -size : (size * (db.pragma('page_size', { simple: true }) as number)) / 1024;
}

/**
 * The embedded store's writing side: the one writer connection, in WAL mode, and every
 * statement that changes the database. A write resolves once its commit is flushed to disk
 * (off the thread: wal-sync.ts), so an acknowledged write survives a crash or power loss.
 * Transactions are serialized by an async lock (a large batch commits in chunks with yields
 * between them, and nothing else may run inside its transaction meanwhile); small writes of one
 * turn of the event loop share a transaction and its flush (group-commit.ts).
 *
 * It runs wherever it is constructed: on the writer thread for a database file
 * (writer-thread.ts), on the caller's thread for an in-memory database.
 */
export class SqliteWrites {
  /** The writer connection (read through it too for an in-memory database). */
  readonly db: Database.Database;
  readonly #file: string;
  readonly #statements = new Map<string, Database.Statement>();
  #lock: Promise<unknown> = Promise.resolve();
  readonly #wal: WalSync;
  /** Checkpoints off the event loop, from the first write on; null for an in-memory database. */
  #checkpointer: WalCheckpointer | null | undefined;
  readonly #onCheckpointFailure: (err: unknown) => void;
  readonly #walMaxBytes: number;
  readonly #checkpointIntervalMs: number;
  readonly #commitAfterFlush: boolean;
  /** When the log's size was last looked at (performance.now()). */
  #walLookedAt = Number.NEGATIVE_INFINITY;
  /** Writes that waited for the log to be checkpointed, and how long in all ({@link stats}). */
  readonly #walWaits = { count: 0, ms: 0 };

  constructor(file: string, options: SqliteWritesOptions = {}) {
    this.#onCheckpointFailure = options.onCheckpointFailure ?? (() => undefined);
    this.#walMaxBytes = options.walMaxBytes ?? WAL_MAX_BYTES;
    this.#checkpointIntervalMs = options.checkpointIntervalMs ?? CHECKPOINT_INTERVAL_MS;
    this.#commitAfterFlush = options.commitAfterFlush ?? false;
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.#file = file;
    this.#wal = new WalSync(file === ':memory:' ? null : `${file}-wal`);
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // Durable before acknowledged all the same: every write waits for a flush of the WAL off
    // the thread (wal-sync.ts) before it resolves.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    // When the log starts over (after a checkpoint copied all of it), its file is cut back.
    this.db.pragma(`journal_size_limit = ${this.#walMaxBytes}`);
    sizeCache(this.db, options.cacheKiB);
    // The full-text triggers compute their tokens here (before the migrations: they backfill).
    this.db.function(
      FTS_BODY_FUNCTION,
      { deterministic: true },
      (tenant, user, content, tags, kind) =>
        ftsBody(String(tenant), String(user), String(content), String(tags), String(kind)),
    );
  }

  /** A cached statement. */
  #stmt(sql: string): Database.Statement {
    let stmt = this.#statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  /**
   * Runs `fn` holding the write lock, after every write queued before it; resolves once what it
   * committed is on disk. On the event loop the lock is released at the commit: the next write
   * runs while this one's flush is in progress, and joins the next flush. On the writer thread
   * (`commitAfterFlush`) it is released after the flush: the writes that arrive meanwhile wait
   * and commit together (the mix at 800 req/s, two runs each: reads p99 18 and 21 ms, against
   * 27 and 209 ms with the lock released at the commit).
   */
  #write<T>(fn: () => T | Promise<T>): Promise<T> {
    this.#checkpointer ?? this.#startCheckpoints();
    const result = this.#lock.then(() =>
      this.#walTooLong() ? this.#walCheckpointed().then(fn) : fn(),
    );
    const durable = result.then((value) => this.#durable().then(() => value));
    this.#lock = (this.#commitAfterFlush ? durable : result).catch(() => undefined);
    return durable;
  }

  /**
   * Whether the write-ahead log has outgrown its bound (looked at every {@link WAL_LOOK_MS}).
   * The worker's checkpoints copy the log while writes go on, but the log starts over only
   * once a checkpoint has copied all of it: under back-to-back batch imports that never
   * happened, and the log grew to 3.6–5.2 GB while 1,000,000 memories were imported.
   */
  #walTooLong(): boolean {
    const checkpointer = this.#checkpointer;
    if (!checkpointer || checkpointer.stats.failed) return false;
    const now = performance.now();
    if (now - this.#walLookedAt < WAL_LOOK_MS) return false;
    this.#walLookedAt = now;
    return walFileBytes(this.#file) > this.#walMaxBytes;
  }

  /**
   * Holding the write lock (no write can start), has the worker checkpoint until the whole log
   * is copied: the next commit starts the log over and cuts its file back. Writes wait for it
   * (the backpressure of an import that outruns the disk); a reader holding part of the log
   * ends the wait after a few tries rather than stalling writes.
   */
  async #walCheckpointed(): Promise<void> {
    const started = performance.now();
    for (let i = 0; i < 5; i++) {
      if (!this.#checkpointer || (await this.#checkpointer.catchUp())) break;
    }
    this.#walWaits.count++;
    this.#walWaits.ms += performance.now() - started;
  }

  /**
   * Moves checkpoints to a worker thread of their own: SQLite's run on the committing
   * connection, and their copy of the log and two fsyncs held the writer for 5 to 25 ms each.
   */
  #startCheckpoints(): void {
    if (this.#file === ':memory:') {
      this.#checkpointer = null;
      return;
    }
    try {
      this.#checkpointer = new WalCheckpointer(this.#file, this.#checkpointIntervalMs, (err) => {
        // Without the worker the log would grow without bound: the writer checkpoints again.
        if (this.db.open) this.db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
        this.#onCheckpointFailure(err);
      });
    } catch (err) {
      // No worker thread (a resource limit): the writer keeps SQLite's own checkpoints, and
      // the write that asked goes on.
      this.#checkpointer = null;
      this.#onCheckpointFailure(err);
      return;
    }
    // Turned off once the worker exists (its failures, reported later, turn them on again).
    this.db.pragma('wal_autocheckpoint = 0');
  }

  /** Resolves once every commit so far is on disk (a failed flush: the store is unavailable). */
  #durable(): Promise<void> {
    return this.#wal.sync().catch((err: unknown) => {
      throw new StoreUnavailable('the write-ahead log could not be flushed to disk', {
        cause: err,
      });
    });
  }

  /** Applies pending migrations; returns how many were applied. */
  async migrate(): Promise<number> {
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
    );
    const applied = new Set(
      (this.db.prepare('SELECT version FROM schema_migrations').all() as Raw[]).map(
        (r) => r.version as number,
      ),
    );
    let count = 0;
    for (const m of SQLITE_MIGRATIONS) {
      if (applied.has(m.version)) continue;
      this.db
        .transaction(() => {
          this.db.exec(m.sql);
          this.db
            .prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
            .run(m.version, m.name, Date.now());
        })
        .immediate();
      count++;
    }
    return count;
  }

  /** The writer's counters: waits for the log's bound, flushes, checkpoints. */
  stats(): WriteStats {
    const c = this.#checkpointer?.stats;
    return {
      walWaits: { ...this.#walWaits },
      walFlushes: this.#wal.flushes,
      checkpoints: c
        ? { count: c.checkpoints, frames: c.frames, maxMs: c.maxMs, failed: c.failed }
        : null,
    };
  }

  /** Answers a trivial query on the writer connection (the readiness probe's). */
  async ping(): Promise<void> {
    this.#stmt('SELECT 1').get();
  }

  /** The connection's page cache in KiB. */
  async cacheKiB(): Promise<number> {
    return cacheKiBOf(this.db);
  }

  /** Waits for the writes in progress, a last checkpoint and flush, then closes. */
  async close(): Promise<void> {
    // Writes queued for a group commit take the lock at the next turn of the loop.
    do {
      await yieldToLoop();
      await this.#lock;
    } while (this.#grouped.queued > 0);
    await this.#checkpointer?.stop();
    await this.#wal.close();
    if (this.db.open) this.db.close();
  }

  /**
   * Runs `step` over `items` in chunks as one transaction, yielding to the event loop between
   * chunks; `last` runs before the commit. Call it holding the write lock: that keeps every
   * other write out of the transaction meanwhile.
   */
  async #chunked<T>(
    items: T[],
    size: number,
    step: (chunk: T[]) => void,
    last?: () => void,
  ): Promise<void> {
    this.#stmt('BEGIN IMMEDIATE').run();
    try {
      for (let i = 0; i < items.length; i += size) {
        if (i > 0) await yieldToLoop();
        step(items.slice(i, i + size));
      }
      last?.();
      this.#stmt('COMMIT').run();
    } catch (err) {
      if (this.db.inTransaction) this.#stmt('ROLLBACK').run();
      throw err;
    }
  }

  #insertMemory(row: MemoryRow): void {
    this.#stmt(
      `INSERT INTO memories (${MEMORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      row.tenant,
      row.id,
      row.userId,
      row.agentId,
      row.sessionId,
      row.content,
      row.kind,
      JSON.stringify(row.tags),
      JSON.stringify(row.metadata),
      row.importance,
      row.pinned ? 1 : 0,
      row.createdAt,
      row.updatedAt,
      row.expiresAt,
      row.deletedAt,
      row.accessCount,
      row.lastAccessedAt,
      row.version,
      embeddingToBlob(row.embedding),
    );
  }

  #insertHistory(row: MemoryRow, op: HistoryOp): void {
    this.#stmt(
      'INSERT INTO memory_history (tenant, memory_id, version, op, at, snapshot) VALUES (?, ?, ?, ?, ?, ?)',
    ).run(row.tenant, row.id, row.version, op, row.updatedAt, snapshotJson(row));
  }

  #insertIdem(rec: IdempotencyRecord): void {
    // An expired record that the purge has not reached yet may be replaced.
    const result = this.#stmt(
      `INSERT INTO idempotency_keys (tenant, key, fingerprint, user_id, status, body, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant, key) DO UPDATE SET fingerprint = excluded.fingerprint,
         user_id = excluded.user_id, status = excluded.status, body = excluded.body,
         created_at = excluded.created_at, expires_at = excluded.expires_at
       WHERE idempotency_keys.expires_at <= excluded.created_at`,
    ).run(
      rec.tenant,
      rec.key,
      rec.fingerprint,
      rec.userId,
      rec.status,
      rec.body,
      rec.createdAt,
      rec.expiresAt,
    );
    if (result.changes === 0) throw new IdempotencyKeyTaken(rec.key);
  }

  #insertRows(rows: MemoryRow[]): void {
    for (const row of rows) {
      this.#insertMemory(row);
      this.#insertHistory(row, 'create');
    }
  }

  /**
   * Small writes of one event-loop turn (inserts, session appends), committed together: one
   * fsync for all. Each runs in its own savepoint (a nested better-sqlite3 transaction): one
   * failing rolls back alone.
   */
  readonly #grouped = new GroupCommit(
    (works) =>
      this.db
        .transaction(() =>
          works.map((work): Outcome => {
            try {
              return { ok: true, value: this.db.transaction(work)() };
            } catch (error) {
              return { ok: false, error };
            }
          }),
        )
        .immediate(),
    (flush) => this.#write(flush),
    () => this.#durable(),
  );

  /** {@link Store.insertMemories}. */
  insertMemories(rows: MemoryRow[], idem?: IdempotencyRecord): Promise<void> {
    if (rows.length <= INSERT_CHUNK) {
      return this.#grouped.add(() => {
        this.#insertRows(rows);
        if (idem) this.#insertIdem(idem);
      });
    }
    return this.#write(() =>
      this.#chunked(
        rows,
        INSERT_CHUNK,
        (chunk) => this.#insertRows(chunk),
        () => {
          if (idem) this.#insertIdem(idem);
        },
      ),
    );
  }

  /**
   * Writes an edit of a memory made from its version `from` (with its history entry and the
   * idempotency record when given), in one transaction; false, with nothing written, when the
   * memory is gone or no longer at `from` (the caller reads it again).
   */
  updateMemory(
    row: MemoryRow,
    op: HistoryOp,
    from: number,
    idem: IdempotencyRecord | undefined,
  ): Promise<boolean> {
    return this.#grouped.add((): boolean => {
      const changed = this.#stmt(UPDATE_MEMORY_SQL).run(
        row.content,
        row.kind,
        JSON.stringify(row.tags),
        JSON.stringify(row.metadata),
        row.importance,
        row.pinned ? 1 : 0,
        row.updatedAt,
        row.expiresAt,
        row.deletedAt,
        row.version,
        embeddingToBlob(row.embedding),
        row.tenant,
        row.id,
        from,
      ).changes;
      if (changed === 0) return false;
      this.#insertHistory(row, op);
      if (idem) this.#insertIdem(idem);
      return true;
    });
  }

  /** {@link Store.recordAccess}. */
  recordAccess(deltas: AccessDelta[]): Promise<void> {
    const merged = mergeAccess(deltas);
    if (merged.length === 0) return Promise.resolve();
    // Touches only the statistics columns: neither the version nor the FTS triggers see it.
    return this.#write(() =>
      this.#chunked(merged, ACCESS_CHUNK, (chunk) => {
        const update = this.#stmt(RECORD_ACCESS_SQL);
        for (const d of chunk) update.run(d.count, d.at, d.at, d.tenant, d.id);
      }),
    );
  }

  /** {@link Store.insertSession}. */
  insertSession(session: SessionRow): Promise<void> {
    return this.#grouped.add(() => {
      this.#stmt(
        `INSERT INTO sessions (${SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(...sessionValues(session));
    });
  }

  /** The session moved on by `activity`, or null when it is not active (all(): runs to the end). */
  #touch(tenant: string, id: string, activity: SessionActivity): SessionRow | null {
    const [r] = this.#stmt(TOUCH_SESSION_SQL).all(...activityValues(activity), tenant, id) as Raw[];
    return r ? toSession(r) : null;
  }

  /** {@link Store.touchSession}. */
  touchSession(tenant: string, id: string, activity: SessionActivity): Promise<SessionRow | null> {
    return this.#grouped.add(() => this.#touch(tenant, id, activity));
  }

  /** {@link Store.appendSessionMessages}. */
  appendSessionMessages(
    tenant: string,
    id: string,
    rows: MemoryRow[],
    activity: SessionActivity,
    idem?: IdempotencyRecord,
  ): Promise<SessionRow | null> {
    // One savepoint of a group commit, the session first: when it is no longer active nothing
    // is inserted. Under the write lock no end can come in between. At most MAX_MESSAGES (100)
    // rows: one step, no yield needed.
    return this.#grouped.add((): SessionRow | null => {
      const session = this.#touch(tenant, id, activity);
      if (!session) return null;
      this.#insertRows(rows);
      if (idem) this.#insertIdem(idem);
      return session;
    });
  }

  /** {@link Store.endSession}. */
  endSession(tenant: string, id: string, end: SessionEnd): Promise<SessionRow | null> {
    // One savepoint of a group commit: the session is ended and linked first; the summary is
    // inserted as insertMemories inserts rows (with its history entry) only when this caller won.
    return this.#grouped.add((): SessionRow | null => {
      const [r] = this.#stmt(END_SESSION_SQL).all(
        end.state,
        end.endedAt,
        end.endedAt,
        end.summary?.id ?? null,
        tenant,
        id,
        end.expectedMessages,
      ) as Raw[];
      if (!r) return null;
      if (end.summary) this.#insertRows([end.summary]);
      return toSession(r);
    });
  }

  /** {@link Store.putTimeoutModels}. */
  putTimeoutModels(rows: TimeoutModelRow[]): Promise<void> {
    const models = latestModels(rows);
    if (models.length === 0) return Promise.resolve();
    return this.#write(() =>
      this.db.transaction(() => {
        const upsert = this.#stmt(
          `INSERT INTO timeout_models (tenant, user_id, model, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (tenant, user_id) DO UPDATE SET
             model = excluded.model, updated_at = excluded.updated_at`,
        );
        for (const m of models) upsert.run(m.tenant, m.userId, m.model, m.updatedAt);
      })(),
    );
  }

  /** {@link Store.eraseUserChunk}. */
  eraseUserChunk(tenant: string, userId: string, limit: number): Promise<number> {
    return this.#write(
      () => this.#stmt(DELETE_SQL.eraseUserChunk).run(tenant, userId, limit).changes,
    );
  }

  /** {@link Store.eraseUserRecords}. */
  eraseUserRecords(tenant: string, userId: string): Promise<number> {
    return this.#write(() =>
      this.db.transaction(() => {
        for (const table of ['user_activity', 'sessions', 'timeout_models']) {
          this.#stmt(`DELETE FROM ${table} WHERE tenant = ? AND user_id = ?`).run(tenant, userId);
        }
        return this.#stmt('DELETE FROM idempotency_keys WHERE tenant = ? AND user_id = ?').run(
          tenant,
          userId,
        ).changes;
      })(),
    );
  }

  /** {@link Store.recordActivity}. */
  recordActivity(deltas: ActivityDelta[]): Promise<void> {
    return this.#write(() =>
      this.db.transaction(() => {
        for (const d of deltas) {
          const stored = this.#stmt(
            'SELECT hours FROM user_activity WHERE tenant = ? AND user_id = ?',
          ).get(d.tenant, d.userId) as Raw | undefined;
          const merged = mergeHours((stored?.hours as string | undefined) ?? null, d);
          this.#stmt(
            `INSERT INTO user_activity (tenant, user_id, last_seen_at, hours, usual_hour)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (tenant, user_id) DO UPDATE SET
               last_seen_at = MAX(last_seen_at, excluded.last_seen_at),
               hours = excluded.hours, usual_hour = excluded.usual_hour`,
          ).run(d.tenant, d.userId, d.lastSeenAt, merged.text, merged.usual);
        }
      })(),
    );
  }

  /** {@link Store.purgeExpired}. */
  purgeExpired(now: number, limit: number): Promise<number> {
    return this.#write(() => this.#stmt(DELETE_SQL.purgeExpired).run(now, limit).changes);
  }

  /** {@link Store.purgeDeleted}. */
  purgeDeleted(cutoff: number, limit: number): Promise<number> {
    return this.#write(() => this.#stmt(DELETE_SQL.purgeDeleted).run(cutoff, limit).changes);
  }

  /** {@link Store.purgeIdempotency}. */
  purgeIdempotency(now: number, limit: number): Promise<number> {
    return this.#write(
      () =>
        this.#stmt(
          'DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)',
        ).run(now, limit).changes,
    );
  }

  /** {@link Store.putIdempotency}. */
  putIdempotency(record: IdempotencyRecord): Promise<void> {
    return this.#write(() => this.#insertIdem(record));
  }

  /** {@link Store.insertApiKey}. */
  insertApiKey(key: ApiKeyRow): Promise<void> {
    return this.#write(() => {
      this.#stmt(
        'INSERT INTO api_keys (id, tenant, hash, label, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)',
      ).run(key.id, key.tenant, key.hash, key.label, key.createdAt, key.revokedAt);
    });
  }

  /** {@link Store.revokeApiKey}. */
  revokeApiKey(id: string, at: number): Promise<boolean> {
    return this.#write(
      () =>
        this.#stmt('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(
          at,
          id,
        ).changes > 0,
    );
  }
}

/**
 * The names of the writing side's calls (what the writer thread answers): its methods that
 * return a promise, but `close`, which ends the channel.
 */
export type WriteMethod = Exclude<
  {
    [K in keyof SqliteWrites]: SqliteWrites[K] extends (...args: never[]) => Promise<unknown>
      ? K
      : never;
  }[keyof SqliteWrites],
  'close'
>;

/**
 * How the store reaches its writing side: a {@link SqliteWrites} on its own thread
 * (writer-thread.ts), or in place (in-memory databases, `ENGRAM_SQLITE_WRITER_THREAD=false`).
 */
export interface WriteChannel {
  call<K extends WriteMethod>(
    method: K,
    ...args: Parameters<SqliteWrites[K]>
  ): Promise<Awaited<ReturnType<SqliteWrites[K]>>>;
  /** The writer's counters as last published. */
  stats(): WriteStats;
  close(): Promise<void>;
}

/** A channel to a {@link SqliteWrites} on this thread. */
export class InPlaceWrites implements WriteChannel {
  readonly writes: SqliteWrites;

  constructor(writes: SqliteWrites) {
    this.writes = writes;
  }

  call<K extends WriteMethod>(
    method: K,
    ...args: Parameters<SqliteWrites[K]>
  ): Promise<Awaited<ReturnType<SqliteWrites[K]>>> {
    const fn = this.writes[method] as (
      ...a: unknown[]
    ) => Promise<Awaited<ReturnType<SqliteWrites[K]>>>;
    return fn.apply(this.writes, args);
  }

  stats(): WriteStats {
    return this.writes.stats();
  }

  close(): Promise<void> {
    return this.writes.close();
  }
}
