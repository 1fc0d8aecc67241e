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
import { listConditions } from '../list-conditions.ts';
import {
  ACTIVITY_SQL,
  fromSnapshot,
  MEMORY_COLUMNS,
  PLAN_SAMPLES,
  type Raw,
  SESSION_COLUMNS,
  searchWords,
  toIdem,
  toKey,
  toRow,
  toSession,
  toTimeoutModel,
} from '../row-mapping.ts';
import {
  type Mutation,
  type PlannedQuery,
  type SessionEnd,
  type SqliteStats,
  type Store,
  StoreUnavailable,
} from '../store.ts';
import { ftsMatch } from './fts-tokens.ts';
import {
  cacheKiBOf,
  DELETE_SQL,
  InPlaceWrites,
  SqliteWrites,
  sizeCache,
  WAL_MAX_BYTES,
  type WriteChannel,
  walFileBytes,
} from './sqlite-writes.ts';
import { WriterThread } from './writer-thread.ts';

const bind = (params: unknown[]): unknown[] =>
  params.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p));

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

const GET_TIMEOUT_MODEL_SQL =
  'SELECT tenant, user_id, model, updated_at FROM timeout_models WHERE tenant = ? AND user_id = ?';

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
  /**
   * Whether the writer connection runs on a thread of its own (writer-thread.ts) rather than on
   * the caller's event loop. Always false for an in-memory database. @default true
   */
  writerThread?: boolean;
  /** Told when the checkpoint worker fails. */
  onCheckpointFailure?: (err: unknown) => void;
  /** Told when the writer thread stops unasked (it is started again at the next write). */
  onWriterFailure?: (err: unknown) => void;
}

/** How often a memory's edit is tried again when another edit committed first. */
const MUTATE_TRIES = 20;

/**
 * The embedded store, in WAL mode. Two connections: the writer (sqlite-writes.ts), on a thread
 * of its own for a database file, where every change is committed and flushed to disk before
 * it is acknowledged; and a reader on the caller's thread, which sees only committed data.
 */
export class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  readonly #file: string;
  readonly #writes: WriteChannel;
  /** The writer connection when it runs on this thread (an in-memory database reads it). */
  readonly #local: SqliteWrites | null;
  #reader: Database.Database | undefined;
  readonly #readStatements = new Map<string, Database.Statement>();
  readonly #cacheKiB: number | undefined;
  readonly #walMaxBytes: number;
  /** Set by {@link close}: reads fail from then on, as on a closed connection. */
  #closed = false;

  /**
   * @param options.onCheckpointFailure told when the checkpoint worker fails (the writer then
   *   checkpoints by itself again, as SQLite does by default).
   * @param options.cacheKiB page cache of each connection (default: the build's, 16,000 KiB).
   */
  constructor(file: string, options: SqliteStoreOptions = {}) {
    const { writerThread = true, onWriterFailure, ...writeOptions } = options;
    this.#file = file;
    this.#cacheKiB = options.cacheKiB;
    this.#walMaxBytes = options.walMaxBytes ?? WAL_MAX_BYTES;
    if (file === ':memory:' || !writerThread) {
      this.#local = new SqliteWrites(file, writeOptions);
      this.#writes = new InPlaceWrites(this.#local);
    } else {
      this.#local = null;
      this.#writes = new WriterThread(file, { ...writeOptions, onFailure: onWriterFailure });
    }
  }

  /** The reader connection, opened at the first read (after the schema exists). */
  #readerDb(): Database.Database {
    if (this.#closed || (this.#reader && !this.#reader.open)) {
      throw new TypeError('The database connection is not open');
    }
    if (!this.#reader) {
      // An in-memory database is private to its connection: read through the writer.
      this.#reader =
        this.#file === ':memory:' && this.#local
          ? this.#local.db
          : new Database(this.#file, { readonly: true });
      this.#reader.pragma('busy_timeout = 5000');
      sizeCache(this.#reader, this.#cacheKiB);
    }
    return this.#reader;
  }

  /** A cached statement on the reader connection. */
  #read(sql: string): Database.Statement {
    let stmt = this.#readStatements.get(sql);
    if (!stmt) {
      stmt = this.#readerDb().prepare(sql);
      this.#readStatements.set(sql, stmt);
    }
    return stmt;
  }

  migrate(): Promise<number> {
    return this.#writes.call('migrate');
  }

  /**
   * Both connections answer: the reader here, and the writer where it runs. A writer thread
   * that died and is not started again yet (its restart window) fails the ping as it fails
   * writes, so the readiness probe reports the store unable to write.
   */
  async ping(): Promise<void> {
    this.#read('SELECT 1').get();
    await this.#writes.call('ping');
  }

  stats(): SqliteStats {
    return {
      dialect: 'sqlite',
      walBytes: walFileBytes(this.#file),
      walMaxBytes: this.#walMaxBytes,
      ...this.#writes.stats(),
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#writes.close();
    if (this.#reader?.open) this.#reader.close();
  }

  insertMemories(rows: MemoryRow[], idem?: IdempotencyRecord): Promise<void> {
    return this.#writes.call('insertMemories', rows, idem);
  }

  async getMemory(tenant: string, id: string): Promise<MemoryRow | null> {
    const r = this.#read(`SELECT ${MEMORY_COLUMNS} FROM memories WHERE tenant = ? AND id = ?`).get(
      tenant,
      id,
    ) as Raw | undefined;
    return r ? toRow(r) : null;
  }

  /**
   * Reads the memory, applies `mutate` and writes the result if the memory is still at the
   * version it was read at (a compare-and-set on the writer); read again and tried again when
   * another edit committed in between. The writer is on another thread: it cannot run `mutate`
   * inside its transaction, as PostgreSQL's row lock does.
   */
  async mutateMemory(
    tenant: string,
    id: string,
    mutate: (current: MemoryRow) => Mutation,
    idem?: (row: MemoryRow) => IdempotencyRecord,
  ): Promise<MemoryRow | null> {
    for (let tries = 0; tries < MUTATE_TRIES; tries++) {
      const current = await this.getMemory(tenant, id);
      if (!current) return null;
      const { row, op } = mutate(current);
      if (await this.#writes.call('updateMemory', row, op, current.version, idem?.(row)))
        return row;
    }
    throw new StoreUnavailable(`memory ${id} kept changing: ${MUTATE_TRIES} edits lost the race`);
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
    return this.#writes.call('recordAccess', deltas);
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
    return this.#writes.call('insertSession', session);
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
    return this.#writes.call('touchSession', tenant, id, activity);
  }

  appendSessionMessages(
    tenant: string,
    id: string,
    rows: MemoryRow[],
    activity: SessionActivity,
    idem?: IdempotencyRecord,
  ): Promise<SessionRow | null> {
    return this.#writes.call('appendSessionMessages', tenant, id, rows, activity, idem);
  }

  endSession(tenant: string, id: string, end: SessionEnd): Promise<SessionRow | null> {
    return this.#writes.call('endSession', tenant, id, end);
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
    return this.#writes.call('putTimeoutModels', rows);
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

  eraseUserChunk(tenant: string, userId: string, limit: number): Promise<number> {
    return this.#writes.call('eraseUserChunk', tenant, userId, limit);
  }

  eraseUserRecords(tenant: string, userId: string): Promise<number> {
    return this.#writes.call('eraseUserRecords', tenant, userId);
  }

  recordActivity(deltas: ActivityDelta[]): Promise<void> {
    return this.#writes.call('recordActivity', deltas);
  }

  async recentlyActiveUsers(since: number, limit: number): Promise<ActiveUser[]> {
    const rows = this.#read(ACTIVITY_SQL.recent).all(since, limit) as Raw[];
    return rows.map((r) => ({ tenant: r.tenant as string, userId: r.user_id as string }));
  }

  async usersUsuallyActiveAt(hour: number, since: number, limit: number): Promise<ActiveUser[]> {
    const rows = this.#read(ACTIVITY_SQL.usual).all(hour, since, limit) as Raw[];
    return rows.map((r) => ({ tenant: r.tenant as string, userId: r.user_id as string }));
  }

  purgeExpired(now: number, limit: number): Promise<number> {
    return this.#writes.call('purgeExpired', now, limit);
  }

  purgeDeleted(cutoff: number, limit: number): Promise<number> {
    return this.#writes.call('purgeDeleted', cutoff, limit);
  }

  purgeIdempotency(now: number, limit: number): Promise<number> {
    return this.#writes.call('purgeIdempotency', now, limit);
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
    return this.#writes.call('putIdempotency', record);
  }

  insertApiKey(key: ApiKeyRow): Promise<void> {
    return this.#writes.call('insertApiKey', key);
  }

  async findApiKey(id: string): Promise<ApiKeyRow | null> {
    const r = this.#read('SELECT * FROM api_keys WHERE id = ?').get(id) as Raw | undefined;
    return r ? toKey(r) : null;
  }

  async listApiKeys(): Promise<ApiKeyRow[]> {
    return (this.#read('SELECT * FROM api_keys ORDER BY created_at').all() as Raw[]).map(toKey);
  }

  revokeApiKey(id: string, at: number): Promise<boolean> {
    return this.#writes.call('revokeApiKey', id, at);
  }

  /** The page cache of each connection in KiB, as SQLite reports it (opens the reader). */
  async cacheSizesKiB(): Promise<{ writer: number; reader: number }> {
    return { writer: await this.#writes.call('cacheKiB'), reader: cacheKiBOf(this.#readerDb()) };
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
      eraseUserChunk: { sql: DELETE_SQL.eraseUserChunk, params: ['t', 'u', 500] },
      purgeExpired: { sql: DELETE_SQL.purgeExpired, params: [0, 500] },
      purgeDeleted: { sql: DELETE_SQL.purgeDeleted, params: [0, 500] },
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
    const rows = this.#readerDb()
      .prepare(`EXPLAIN QUERY PLAN ${sql}`)
      .all(...bind(params)) as Raw[];
    return rows.map((r) => String(r.detail)).join('\n');
  }
}
