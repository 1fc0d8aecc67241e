import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type {
  AccessDelta,
  ActiveUser,
  ActivityDelta,
  ApiKeyRow,
  HistoryEntry,
  HistoryOp,
  IdempotencyRecord,
  ListFilter,
  MemoryRow,
  TextCandidate,
} from '../../memory/memory-types.ts';
import type { SessionActivity, SessionRow, TimeoutModelRow } from '../../sessions/session-types.ts';
import { yieldToLoop } from '../../util/yield.ts';
import { listConditions } from '../list-conditions.ts';
import {
  ACCESS_CHUNK,
  ACTIVITY_SQL,
  activityValues,
  embeddingToBlob,
  fromSnapshot,
  latestModels,
  MEMORY_COLUMNS,
  mergeAccess,
  mergeHours,
  PLAN_SAMPLES,
  type Raw,
  SESSION_COLUMNS,
  searchWords,
  sessionValues,
  snapshotJson,
  toIdem,
  toKey,
  toRow,
  toSession,
  toTimeoutModel,
} from '../row-mapping.ts';
import {
  IdempotencyKeyTaken,
  type Mutation,
  type PlannedQuery,
  type SqliteStats,
  type Store,
  StoreUnavailable,
} from '../store.ts';
import { FTS_BODY_FUNCTION, ftsBody, ftsMatch } from './fts-tokens.ts';
import { GroupCommit, type Outcome } from './group-commit.ts';
import { SQLITE_MIGRATIONS } from './sqlite-migrations.ts';
import { WalCheckpointer } from './wal-checkpointer.ts';
import { WalSync } from './wal-sync.ts';

const bind = (params: unknown[]): unknown[] =>
  params.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p));

/** Rows per step of a large batch insert: each step stays within a few milliseconds. */
const INSERT_CHUNK = 100;

// The user's best matches by FTS5's BM25, read from their own postings (one token per user and
// term: fts-tokens.ts), then their rows by rowid. Tenant and user are checked on the row (a
// token is a hash), and deletion and expiry (the index holds live rows, expired ones until the
// purge); a match that fails them comes back without a row (LEFT JOIN), so the caller knows
// how many matches were read. The document frequencies are the user's own; the number of
// documents and their mean length are the whole table's (FTS5 keeps no others), which scales
// every term alike.
const SEARCH_SQL = `WITH matches AS MATERIALIZED (
    SELECT rowid AS match_rowid, -bm25(memories_fts) AS match_score FROM memories_fts
    WHERE memories_fts MATCH ? ORDER BY bm25(memories_fts) LIMIT ?)
  SELECT match_score, ${MEMORY_COLUMNS} FROM matches
  LEFT JOIN memories ON memories.rowid = match_rowid AND memories.tenant = ?
    AND memories.user_id = ? AND memories.deleted_at IS NULL
    AND (memories.expires_at IS NULL OR memories.expires_at > ?)`;

/** Matches read per wanted result at first (more when expired ones fill the first read). */
const FTS_READ_FACTOR = 2;
/** Most full-text matches read for one query. */
const FTS_READ_MAX = 4_000;

const COUNT_LIVE_SQL = `SELECT count(*) AS n FROM memories
  WHERE tenant = ? AND user_id = ? AND deleted_at IS NULL
    AND (expires_at IS NULL OR expires_at > ?)`;

// max() of SQLite returns NULL when an argument is NULL: a first access sets the time.
const RECORD_ACCESS_SQL = `UPDATE memories SET access_count = access_count + ?,
    last_accessed_at = max(coalesce(last_accessed_at, ?), ?)
  WHERE tenant = ? AND id = ?`;

// Served by memories_importance (partial: live rows only); expiry is checked on the row.
const TOP_BY_IMPORTANCE_SQL = `SELECT ${MEMORY_COLUMNS} FROM memories
  WHERE tenant = ? AND user_id = ? AND deleted_at IS NULL
    AND (expires_at IS NULL OR expires_at > ?)
  ORDER BY importance DESC, id DESC
  LIMIT ?`;

const GET_SESSION_SQL = `SELECT ${SESSION_COLUMNS} FROM sessions WHERE tenant = ? AND id = ?`;

const LIST_SESSIONS_SQL = `SELECT ${SESSION_COLUMNS} FROM sessions
  WHERE tenant = ? AND user_id = ? ORDER BY id DESC LIMIT ?`;
const LIST_SESSIONS_BEFORE_SQL = `SELECT ${SESSION_COLUMNS} FROM sessions
  WHERE tenant = ? AND user_id = ? AND id < ? ORDER BY id DESC LIMIT ?`;

// The state is a literal (not a parameter) in every sweeper query: the partial index
// sessions_due applies only when the planner can see that state = 'active'.
const DUE_SESSIONS_SQL = `SELECT tenant, id FROM sessions
  WHERE state = 'active' AND expires_at <= ? ORDER BY expires_at LIMIT ?`;
const NEXT_EXPIRY_SQL = `SELECT expires_at FROM sessions
  WHERE state = 'active' ORDER BY expires_at LIMIT 1`;

const TOUCH_SESSION_SQL = `UPDATE sessions SET last_activity_at = ?, expires_at = ?, timeout_ms = ?,
    timeout_basis = ?, message_count = message_count + ?
  WHERE tenant = ? AND id = ? AND state = 'active'
  RETURNING ${SESSION_COLUMNS}`;

// The compare-and-set: only the caller that still finds the session active, with the messages
// it summarized and no more, changes it.
const END_SESSION_SQL = `UPDATE sessions SET state = ?, ended_at = ?, expires_at = ?, summary_id = ?
  WHERE tenant = ? AND id = ? AND state = 'active' AND message_count = ?
  RETURNING ${SESSION_COLUMNS}`;

const GET_TIMEOUT_MODEL_SQL =
  'SELECT tenant, user_id, model, updated_at FROM timeout_models WHERE tenant = ? AND user_id = ?';

/** How often the checkpoint worker copies the log into the database file. */
const CHECKPOINT_INTERVAL_MS = 250;
/** SQLite's own automatic checkpoint (pages of log), used again when the worker fails. */
const AUTOCHECKPOINT_PAGES = 1000;

/** Longest the write-ahead log may grow before writes wait for a checkpoint (default). */
const WAL_MAX_BYTES = 268_435_456;
/** The log's size is looked at most this often (a stat of the file). */
const WAL_LOOK_MS = 50;

/** Options of a {@link SqliteStore}. */
export interface SqliteStoreOptions {
  /** Page cache of each connection in KiB (default: the build's, 16,000 KiB). */
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
}

/**
 * The embedded store, in WAL mode; a write resolves once its commit is flushed to disk (off the
 * event loop: wal-sync.ts), so that an acknowledged write survives a crash or power loss. Two
 * connections: the writer, whose transactions are serialized by an
 * async lock (a large batch commits in chunks with yields between them, and nothing else may
 * run inside its transaction meanwhile), and a reader, which sees only committed data.
 */
export class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  readonly #db: Database.Database;
  readonly #file: string;
  #reader: Database.Database | undefined;
  readonly #statements = new Map<string, Database.Statement>();
  readonly #readStatements = new Map<string, Database.Statement>();
  #lock: Promise<unknown> = Promise.resolve();
  readonly #wal: WalSync;
  /** Checkpoints off the event loop, from the first write on; null for an in-memory database. */
  #checkpointer: WalCheckpointer | null | undefined;
  readonly #onCheckpointFailure: (err: unknown) => void;
  readonly #cacheKiB: number | undefined;
  readonly #walMaxBytes: number;
  readonly #checkpointIntervalMs: number;
  /** When the log's size was last looked at (performance.now()). */
  #walLookedAt = Number.NEGATIVE_INFINITY;
  /** Writes that waited for the log to be checkpointed, and how long in all ({@link stats}). */
  readonly #walWaits = { count: 0, ms: 0 };

  /**
   * @param options.onCheckpointFailure told when the checkpoint worker fails (the writer then
   *   checkpoints on the event loop again, as SQLite does by default).
   * @param options.cacheKiB page cache of each connection (default: the build's, 16,000 KiB).
   */
  constructor(file: string, options: SqliteStoreOptions = {}) {
    this.#onCheckpointFailure = options.onCheckpointFailure ?? (() => undefined);
    this.#cacheKiB = options.cacheKiB;
    this.#walMaxBytes = options.walMaxBytes ?? WAL_MAX_BYTES;
    this.#checkpointIntervalMs = options.checkpointIntervalMs ?? CHECKPOINT_INTERVAL_MS;
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.#file = file;
    this.#wal = new WalSync(file === ':memory:' ? null : `${file}-wal`);
    this.#db = new Database(file);
    this.#db.pragma('journal_mode = WAL');
    // Durable before acknowledged all the same: every write waits for a flush of the WAL off
    // the event loop (wal-sync.ts) before it resolves.
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('foreign_keys = ON');
    this.#db.pragma('busy_timeout = 5000');
    // When the log starts over (after a checkpoint copied all of it), its file is cut back.
    this.#db.pragma(`journal_size_limit = ${this.#walMaxBytes}`);
    this.#sizeCache(this.#db);
    // The full-text triggers compute their tokens here (before the migrations: they backfill).
    this.#db.function(
      FTS_BODY_FUNCTION,
      { deterministic: true },
      (tenant, user, content, tags, kind) =>
        ftsBody(String(tenant), String(user), String(content), String(tags), String(kind)),
    );
  }

  /** Sets the connection's page cache to the configured size (a negative cache_size is KiB). */
  #sizeCache(db: Database.Database): void {
    if (this.#cacheKiB !== undefined) db.pragma(`cache_size = ${-Math.round(this.#cacheKiB)}`);
  }

  /** A cached statement on the writer connection. */
  #stmt(sql: string): Database.Statement {
    let stmt = this.#statements.get(sql);
    if (!stmt) {
      stmt = this.#db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  /** A cached statement on the reader connection (opened after the schema exists). */
  #read(sql: string): Database.Statement {
    let stmt = this.#readStatements.get(sql);
    if (!stmt) {
      if (!this.#db.open) throw new TypeError('The database connection is not open');
      if (!this.#reader) {
        // An in-memory database is private to its connection: read through the writer.
        this.#reader =
          this.#file === ':memory:' ? this.#db : new Database(this.#file, { readonly: true });
        this.#reader.pragma('busy_timeout = 5000');
        this.#sizeCache(this.#reader);
      }
      stmt = this.#reader.prepare(sql);
      this.#readStatements.set(sql, stmt);
    }
    return stmt;
  }

  /**
   * Runs `fn` holding the write lock, after every write queued before it; resolves once what it
   * committed is on disk. The lock is released at the commit: the next write runs while this
   * one's flush is in progress, and joins the next flush.
   */
  #write<T>(fn: () => T | Promise<T>): Promise<T> {
    this.#checkpointer ?? this.#startCheckpoints();
    const result = this.#lock.then(() =>
      this.#walTooLong() ? this.#walCheckpointed().then(fn) : fn(),
    );
    this.#lock = result.catch(() => undefined);
    return result.then((value) => this.#durable().then(() => value));
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
    return this.#walBytes() > this.#walMaxBytes;
  }

  /** The log file's size now; 0 without one (none yet, or an in-memory database). */
  #walBytes(): number {
    if (this.#file === ':memory:') return 0;
    try {
      return statSync(`${this.#file}-wal`).size;
    } catch {
      return 0;
    }
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
   * Moves checkpoints to a worker thread: SQLite's own run on the committing connection, and
   * their copy of the log and two fsyncs held the event loop for 5 to 25 ms each.
   */
  #startCheckpoints(): void {
    if (this.#file === ':memory:') {
      this.#checkpointer = null;
      return;
    }
    try {
      this.#checkpointer = new WalCheckpointer(this.#file, this.#checkpointIntervalMs, (err) => {
        // Without the worker the log would grow without bound: the writer checkpoints again.
        if (this.#db.open) this.#db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
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
    this.#db.pragma('wal_autocheckpoint = 0');
  }

  /** Resolves once every commit so far is on disk (a failed flush: the store is unavailable). */
  #durable(): Promise<void> {
    return this.#wal.sync().catch((err: unknown) => {
      throw new StoreUnavailable('the write-ahead log could not be flushed to disk', {
        cause: err,
      });
    });
  }

  async migrate(): Promise<number> {
    this.#db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
    );
    const applied = new Set(
      (this.#db.prepare('SELECT version FROM schema_migrations').all() as Raw[]).map(
        (r) => r.version as number,
      ),
    );
    let count = 0;
    for (const m of SQLITE_MIGRATIONS) {
      if (applied.has(m.version)) continue;
      this.#db
        .transaction(() => {
          this.#db.exec(m.sql);
          this.#db
            .prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
            .run(m.version, m.name, Date.now());
        })
        .immediate();
      count++;
    }
    return count;
  }

  async ping(): Promise<void> {
    this.#read('SELECT 1').get();
  }

  stats(): SqliteStats {
    const c = this.#checkpointer?.stats;
    return {
      dialect: 'sqlite',
      walBytes: this.#walBytes(),
      walMaxBytes: this.#walMaxBytes,
      walWaits: { ...this.#walWaits },
      walFlushes: this.#wal.flushes,
      checkpoints: c
        ? { count: c.checkpoints, frames: c.frames, maxMs: c.maxMs, failed: c.failed }
        : null,
    };
  }

  async close(): Promise<void> {
    await this.#lock;
    await this.#checkpointer?.stop();
    await this.#wal.close();
    if (this.#reader?.open) this.#reader.close();
    if (this.#db.open) this.#db.close();
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
      if (this.#db.inTransaction) this.#stmt('ROLLBACK').run();
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
      this.#db
        .transaction(() =>
          works.map((work): Outcome => {
            try {
              return { ok: true, value: this.#db.transaction(work)() };
            } catch (error) {
              return { ok: false, error };
            }
          }),
        )
        .immediate(),
    (flush) => this.#write(flush),
    () => this.#durable(),
  );

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

  async getMemory(tenant: string, id: string): Promise<MemoryRow | null> {
    const r = this.#read(`SELECT ${MEMORY_COLUMNS} FROM memories WHERE tenant = ? AND id = ?`).get(
      tenant,
      id,
    ) as Raw | undefined;
    return r ? toRow(r) : null;
  }

  mutateMemory(
    tenant: string,
    id: string,
    mutate: (current: MemoryRow) => Mutation,
    idem?: (row: MemoryRow) => IdempotencyRecord,
  ): Promise<MemoryRow | null> {
    return this.#write(() =>
      this.#db
        .transaction((): MemoryRow | null => {
          const raw = this.#stmt(
            `SELECT ${MEMORY_COLUMNS} FROM memories WHERE tenant = ? AND id = ?`,
          ).get(tenant, id) as Raw | undefined;
          if (!raw) return null;
          const { row, op } = mutate(toRow(raw));
          this.#stmt(
            `UPDATE memories SET content = ?, kind = ?, tags = ?, metadata = ?, importance = ?,
           pinned = ?, updated_at = ?, expires_at = ?, deleted_at = ?, version = ?, embedding = ?
         WHERE tenant = ? AND id = ?`,
          ).run(
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
            tenant,
            id,
          );
          this.#insertHistory(row, op);
          if (idem) this.#insertIdem(idem(row));
          return row;
        })
        .immediate(),
    );
  }

  #listSql(tenant: string, filter: ListFilter): { sql: string; params: unknown[] } {
    const cond = listConditions(filter, (tags) => ({
      sql: tags
        .map(() => 'EXISTS (SELECT 1 FROM json_each(memories.tags) WHERE value = ?)')
        .join(' AND '),
      params: tags,
    }));
    return {
      sql: `SELECT ${MEMORY_COLUMNS} FROM memories WHERE tenant = ? AND user_id = ? AND ${cond.sql} ORDER BY id DESC LIMIT ?`,
      params: bind([tenant, filter.userId, ...cond.params, filter.limit]),
    };
  }

  async listMemories(tenant: string, filter: ListFilter): Promise<MemoryRow[]> {
    const { sql, params } = this.#listSql(tenant, filter);
    return (this.#read(sql).all(...params) as Raw[]).map(toRow);
  }

  async listHistory(tenant: string, memoryId: string): Promise<HistoryEntry[]> {
    const rows = this.#read(
      'SELECT memory_id, version, op, at, snapshot FROM memory_history WHERE tenant = ? AND memory_id = ? ORDER BY version',
    ).all(tenant, memoryId) as Raw[];
    return rows.map((r) => ({
      memoryId: r.memory_id as string,
      version: r.version as number,
      op: r.op as HistoryOp,
      at: r.at as number,
      snapshot: fromSnapshot(r.snapshot),
    }));
  }

  async countLiveMemories(tenant: string, userId: string, now: number): Promise<number> {
    const r = this.#read(COUNT_LIVE_SQL).get(tenant, userId, now) as Raw;
    return r.n as number;
  }

  async searchText(
    tenant: string,
    userId: string,
    terms: string[],
    limit: number,
    now: number,
  ): Promise<TextCandidate[]> {
    const words = searchWords(terms);
    const match = words.length === 0 ? null : ftsMatch(tenant, userId, words);
    if (match === null || limit <= 0) return [];
    // Expired matches stay in the index until the purge: read further when they took places.
    for (let read = Math.min(limit * FTS_READ_FACTOR + 10, FTS_READ_MAX); ; ) {
      const matches = this.#read(SEARCH_SQL).all(match, read, tenant, userId, now) as Raw[];
      const found = matches.filter((r) => r.id !== null);
      if (found.length >= limit || matches.length < read || read >= FTS_READ_MAX) {
        return found
          .map((r) => ({ row: toRow(r), score: r.match_score as number }))
          .sort((a, b) => b.score - a.score || (a.row.id < b.row.id ? 1 : -1))
          .slice(0, limit);
      }
      read = Math.min(read * 4, FTS_READ_MAX);
    }
  }

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

  async topByImportance(
    tenant: string,
    userId: string,
    limit: number,
    now: number,
  ): Promise<MemoryRow[]> {
    if (limit <= 0) return [];
    return (this.#read(TOP_BY_IMPORTANCE_SQL).all(tenant, userId, now, limit) as Raw[]).map(toRow);
  }

  insertSession(session: SessionRow): Promise<void> {
    return this.#grouped.add(() => {
      this.#stmt(
        `INSERT INTO sessions (${SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(...sessionValues(session));
    });
  }

  async getSession(tenant: string, id: string): Promise<SessionRow | null> {
    const r = this.#read(GET_SESSION_SQL).get(tenant, id) as Raw | undefined;
    return r ? toSession(r) : null;
  }

  async listSessions(
    tenant: string,
    userId: string,
    beforeId: string | null,
    limit: number,
  ): Promise<SessionRow[]> {
    const rows =
      beforeId === null
        ? this.#read(LIST_SESSIONS_SQL).all(tenant, userId, limit)
        : this.#read(LIST_SESSIONS_BEFORE_SQL).all(tenant, userId, beforeId, limit);
    return (rows as Raw[]).map(toSession);
  }

  touchSession(tenant: string, id: string, activity: SessionActivity): Promise<SessionRow | null> {
    // all(), not get(): the statement runs to completion before it returns.
    return this.#grouped.add(() => {
      const [r] = this.#stmt(TOUCH_SESSION_SQL).all(
        ...activityValues(activity),
        tenant,
        id,
      ) as Raw[];
      return r ? toSession(r) : null;
    });
  }

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
      const [r] = this.#stmt(TOUCH_SESSION_SQL).all(
        ...activityValues(activity),
        tenant,
        id,
      ) as Raw[];
      if (!r) return null;
      this.#insertRows(rows);
      if (idem) this.#insertIdem(idem);
      return toSession(r);
    });
  }

  endSession(
    tenant: string,
    id: string,
    end: {
      state: 'ended' | 'expired';
      endedAt: number;
      summary: MemoryRow | null;
      expectedMessages: number;
    },
  ): Promise<SessionRow | null> {
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

  async dueSessions(now: number, limit: number): Promise<Array<{ tenant: string; id: string }>> {
    if (limit <= 0) return [];
    const rows = this.#read(DUE_SESSIONS_SQL).all(now, limit) as Raw[];
    return rows.map((r) => ({ tenant: r.tenant as string, id: r.id as string }));
  }

  async nextSessionExpiry(): Promise<number | null> {
    const r = this.#read(NEXT_EXPIRY_SQL).get() as Raw | undefined;
    return r ? (r.expires_at as number) : null;
  }

  async getTimeoutModel(tenant: string, userId: string): Promise<TimeoutModelRow | null> {
    const r = this.#read(GET_TIMEOUT_MODEL_SQL).get(tenant, userId) as Raw | undefined;
    return r ? toTimeoutModel(r) : null;
  }

  putTimeoutModels(rows: TimeoutModelRow[]): Promise<void> {
    const models = latestModels(rows);
    if (models.length === 0) return Promise.resolve();
    return this.#write(() =>
      this.#db.transaction(() => {
        const upsert = this.#stmt(
          `INSERT INTO timeout_models (tenant, user_id, model, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (tenant, user_id) DO UPDATE SET
             model = excluded.model, updated_at = excluded.updated_at`,
        );
        for (const m of models) upsert.run(m.tenant, m.userId, m.model, m.updatedAt);
      })(),
    );
  }

  #exportSql = `SELECT ${MEMORY_COLUMNS} FROM memories
    WHERE tenant = ? AND user_id = ? AND id > ? AND deleted_at IS NULL
      AND (expires_at IS NULL OR expires_at > ?)
    ORDER BY id LIMIT ?`;

  async exportMemories(
    tenant: string,
    userId: string,
    afterId: string | null,
    limit: number,
    now: number,
  ): Promise<MemoryRow[]> {
    return (
      this.#read(this.#exportSql).all(tenant, userId, afterId ?? '', now, limit) as Raw[]
    ).map(toRow);
  }

  #eraseSql =
    'DELETE FROM memories WHERE rowid IN (SELECT rowid FROM memories WHERE tenant = ? AND user_id = ? LIMIT ?)';

  eraseUserChunk(tenant: string, userId: string, limit: number): Promise<number> {
    return this.#write(() => this.#stmt(this.#eraseSql).run(tenant, userId, limit).changes);
  }

  eraseUserRecords(tenant: string, userId: string): Promise<number> {
    return this.#write(() =>
      this.#db.transaction(() => {
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

  recordActivity(deltas: ActivityDelta[]): Promise<void> {
    return this.#write(() =>
      this.#db.transaction(() => {
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

  async recentlyActiveUsers(since: number, limit: number): Promise<ActiveUser[]> {
    const rows = this.#read(ACTIVITY_SQL.recent).all(since, limit) as Raw[];
    return rows.map((r) => ({ tenant: r.tenant as string, userId: r.user_id as string }));
  }

  async usersUsuallyActiveAt(hour: number, since: number, limit: number): Promise<ActiveUser[]> {
    const rows = this.#read(ACTIVITY_SQL.usual).all(hour, since, limit) as Raw[];
    return rows.map((r) => ({ tenant: r.tenant as string, userId: r.user_id as string }));
  }

  #purgeExpiredSql =
    'DELETE FROM memories WHERE rowid IN (SELECT rowid FROM memories WHERE expires_at <= ? LIMIT ?)';
  #purgeDeletedSql =
    'DELETE FROM memories WHERE rowid IN (SELECT rowid FROM memories WHERE deleted_at <= ? LIMIT ?)';

  purgeExpired(now: number, limit: number): Promise<number> {
    return this.#write(() => this.#stmt(this.#purgeExpiredSql).run(now, limit).changes);
  }

  purgeDeleted(cutoff: number, limit: number): Promise<number> {
    return this.#write(() => this.#stmt(this.#purgeDeletedSql).run(cutoff, limit).changes);
  }

  purgeIdempotency(now: number, limit: number): Promise<number> {
    return this.#write(
      () =>
        this.#stmt(
          'DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)',
        ).run(now, limit).changes,
    );
  }

  #getIdemSql = 'SELECT * FROM idempotency_keys WHERE tenant = ? AND key = ? AND expires_at > ?';

  async getIdempotency(
    tenant: string,
    key: string,
    now: number,
  ): Promise<IdempotencyRecord | null> {
    const r = this.#read(this.#getIdemSql).get(tenant, key, now) as Raw | undefined;
    return r ? toIdem(r) : null;
  }

  putIdempotency(record: IdempotencyRecord): Promise<void> {
    return this.#write(() => this.#insertIdem(record));
  }

  insertApiKey(key: ApiKeyRow): Promise<void> {
    return this.#write(() => {
      this.#stmt(
        'INSERT INTO api_keys (id, tenant, hash, label, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)',
      ).run(key.id, key.tenant, key.hash, key.label, key.createdAt, key.revokedAt);
    });
  }

  async findApiKey(id: string): Promise<ApiKeyRow | null> {
    const r = this.#read('SELECT * FROM api_keys WHERE id = ?').get(id) as Raw | undefined;
    return r ? toKey(r) : null;
  }

  async listApiKeys(): Promise<ApiKeyRow[]> {
    return (this.#read('SELECT * FROM api_keys ORDER BY created_at').all() as Raw[]).map(toKey);
  }

  revokeApiKey(id: string, at: number): Promise<boolean> {
    return this.#write(
      () =>
        this.#stmt('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(
          at,
          id,
        ).changes > 0,
    );
  }

  /** The page cache of each connection in KiB, as SQLite reports it (opens the reader). */
  cacheSizesKiB(): { writer: number; reader: number } {
    const kib = (db: Database.Database) => {
      const size = db.pragma('cache_size', { simple: true }) as number;
      // Negative: KiB; positive: pages.
      return size < 0
        ? -size
        : (size * (db.pragma('page_size', { simple: true }) as number)) / 1024;
    };
    this.#read('SELECT 1');
    return { writer: kib(this.#db), reader: kib(this.#reader ?? this.#db) };
  }

  async explain(query: PlannedQuery): Promise<string> {
    const { id } = PLAN_SAMPLES;
    const plans: Record<PlannedQuery, { sql: string; params: unknown[] }> = {
      getMemory: {
        sql: `SELECT ${MEMORY_COLUMNS} FROM memories WHERE tenant = ? AND id = ?`,
        params: ['t', id],
      },
      listMemories: this.#listSql('t', PLAN_SAMPLES.list),
      listMemoriesFiltered: this.#listSql('t', PLAN_SAMPLES.listFiltered),
      listMemoriesBySession: this.#listSql('t', PLAN_SAMPLES.listBySession),
      listHistory: {
        sql: 'SELECT memory_id, version, op, at, snapshot FROM memory_history WHERE tenant = ? AND memory_id = ? ORDER BY version',
        params: ['t', id],
      },
      exportMemories: { sql: this.#exportSql, params: ['t', 'u', '', 0, 500] },
      eraseUserChunk: { sql: this.#eraseSql, params: ['t', 'u', 500] },
      purgeExpired: { sql: this.#purgeExpiredSql, params: [0, 500] },
      purgeDeleted: { sql: this.#purgeDeletedSql, params: [0, 500] },
      getIdempotency: { sql: this.#getIdemSql, params: ['t', 'k', 0] },
      findApiKey: { sql: 'SELECT * FROM api_keys WHERE id = ?', params: ['k'] },
      recentlyActiveUsers: { sql: ACTIVITY_SQL.recent, params: [0, 100] },
      usersUsuallyActiveAt: { sql: ACTIVITY_SQL.usual, params: [3, 0, 100] },
      searchText: {
        sql: SEARCH_SQL,
        params: [
          ftsMatch('t', 'u', PLAN_SAMPLES.search.terms),
          PLAN_SAMPLES.search.limit,
          't',
          'u',
          0,
        ],
      },
      countLiveMemories: { sql: COUNT_LIVE_SQL, params: ['t', 'u', 0] },
      topByImportance: { sql: TOP_BY_IMPORTANCE_SQL, params: ['t', 'u', 0, 20] },
      getSession: { sql: GET_SESSION_SQL, params: ['t', id] },
      listSessions: { sql: LIST_SESSIONS_BEFORE_SQL, params: ['t', 'u', id, 50] },
      dueSessions: { sql: DUE_SESSIONS_SQL, params: [0, 100] },
      getTimeoutModel: { sql: GET_TIMEOUT_MODEL_SQL, params: ['t', 'u'] },
    };
    const { sql, params } = plans[query];
    const rows = this.#db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...bind(params)) as Raw[];
    return rows.map((r) => String(r.detail)).join('\n');
  }
}
