import pg from 'pg';
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
  ACCESS_CHUNK,
  ACTIVITY_SQL,
  activityValues,
  embeddingToArray,
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
  type PostgresStats,
  type SessionEnd,
  type Store,
  StoreUnavailable,
} from '../store.ts';
import { POSTGRES_MIGRATIONS } from './postgres-migrations.ts';
import { MEMORY_RECORDSET } from './postgres-rows.ts';

/** Settings of a {@link PostgresStore}. */
export interface PostgresStoreOptions {
  /** Connection string; its `options` (e.g. `-c search_path=…`) reach the server. */
  url: string;
  poolMax: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  logger?: { error(obj: object, msg: string): void };
}

/** A client idle longer than this is probed with `SELECT 1` before use. */
const IDLE_CHECK_MS = 5_000;
/** Key of the advisory lock that serializes migrations across instances ("engram"). */
const MIGRATION_LOCK = 0x656e6772616d;

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '57014', // query_canceled: statement_timeout hit, the store is too slow to answer now
]);

// pg reports a lost socket or an exhausted pool with plain Errors that carry no code.
const UNAVAILABLE_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|is not queryable|Query read timeout/;

/** Whether an error means the server or the connection failed, not the statement. */
function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof AggregateError && err.errors.some(isConnectionError)) return true;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) {
    return true;
  }
  return UNAVAILABLE_MESSAGE.test(err.message);
}

/** Rewrites the `?` placeholders of `sql` as `$start`, `$start+1`, … */
function numbered(sql: string, start: number): string {
  let n = start;
  return sql.replace(/\?/g, () => `$${n++}`);
}

type Query = { sql: string; params: unknown[] };

const SELECT_MEMORY = `SELECT ${MEMORY_COLUMNS} FROM memories WHERE tenant = $1 AND id = $2`;
const SELECT_HISTORY =
  'SELECT memory_id, version, op, at, snapshot FROM memory_history WHERE tenant = $1 AND memory_id = $2 ORDER BY version';
const EXPORT_SQL = `SELECT ${MEMORY_COLUMNS} FROM memories
  WHERE tenant = $1 AND user_id = $2 AND id > $3 AND deleted_at IS NULL
    AND (expires_at IS NULL OR expires_at > $4)
  ORDER BY id LIMIT $5`;
// Chunked deletes select primary keys rather than ctids: a ctid changes when a concurrent
// update moves the row, which would silently shrink the chunk.
const ERASE_SQL = `DELETE FROM memories WHERE tenant = $1 AND id IN
  (SELECT id FROM memories WHERE tenant = $1 AND user_id = $2 LIMIT $3)`;
const PURGE_EXPIRED_SQL = `DELETE FROM memories WHERE (tenant, id) IN
  (SELECT tenant, id FROM memories WHERE expires_at <= $1 LIMIT $2)`;
const PURGE_DELETED_SQL = `DELETE FROM memories WHERE (tenant, id) IN
  (SELECT tenant, id FROM memories WHERE deleted_at <= $1 LIMIT $2)`;
const PURGE_IDEM_SQL = `DELETE FROM idempotency_keys WHERE (tenant, key) IN
  (SELECT tenant, key FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)`;
const IDEM_COLUMNS = 'tenant, key, fingerprint, user_id, status, body, created_at, expires_at';
const GET_IDEM_SQL = `SELECT ${IDEM_COLUMNS} FROM idempotency_keys
  WHERE tenant = $1 AND key = $2 AND expires_at > $3`;
const KEY_COLUMNS = 'id, tenant, hash, label, created_at, revoked_at';
const FIND_KEY_SQL = `SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = $1`;

// The batch's embeddings (JSON arrays, read as real[]) joined to its rows by primary key: a
// batch that repeats a key fails on the primary key either way.
const INSERT_MEMORIES_SQL = `INSERT INTO memories (${MEMORY_COLUMNS})
  SELECT rs.*, e.embedding FROM (${MEMORY_RECORDSET}) AS rs
  LEFT JOIN jsonb_to_recordset($1::jsonb) AS e(tenant text, id text, embedding real[])
    ON e.tenant = rs.tenant AND e.id = rs.id`;
const INSERT_HISTORY_SQL = `INSERT INTO memory_history (tenant, memory_id, version, op, at, snapshot)
  SELECT e->>'tenant', e->>'id', (e->>'version')::integer, 'create',
    (e->>'updatedAt')::bigint, e - 'embedding'
  FROM jsonb_array_elements($1::jsonb) AS e`;

/**
 * Inserts the batch ($1) with a `create` history entry each when `gate` (a condition on the
 * statement's other CTEs, or `true`) holds: as CTEs of one statement, so that a write is one
 * round trip. The history's foreign key is checked at the end of the statement, when the
 * memories are in.
 */
const insertRowsCtes = (gate: string): string => `ins_memories AS (
    ${INSERT_MEMORIES_SQL} WHERE ${gate}
  ), ins_history AS (
    ${INSERT_HISTORY_SQL} WHERE ${gate}
  )`;
/** The batch ($1) and its history in one statement. */
const INSERT_ROWS_SQL = `WITH ${insertRowsCtes('true')} SELECT 1`;

const COUNT_LIVE_SQL = `SELECT count(*) AS n FROM memories
  WHERE tenant = $1 AND user_id = $2 AND deleted_at IS NULL
    AND (expires_at IS NULL OR expires_at > $3)`;

// The query is folded into a constant when planned, so that the GIN index can serve it.
const SEARCH_SQL = `SELECT ${MEMORY_COLUMNS}, ts_rank_cd(search, q) AS score
  FROM memories CROSS JOIN websearch_to_tsquery('english'::regconfig, $3) AS q
  WHERE tenant = $1 AND user_id = $2 AND search @@ q AND deleted_at IS NULL
    AND (expires_at IS NULL OR expires_at > $4)
  ORDER BY score DESC, id DESC
  LIMIT $5`;

// Rows are locked in the order of the arrays (sorted by the caller), so that two instances
// flushing overlapping deltas cannot deadlock; GREATEST skips a NULL last access.
const RECORD_ACCESS_SQL = `WITH locked AS MATERIALIZED (
    SELECT m.tenant, m.id, d.n, d.at
    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
      WITH ORDINALITY AS d(tenant, id, n, at, ord)
    JOIN memories m ON m.tenant = d.tenant AND m.id = d.id
    ORDER BY d.ord
    FOR UPDATE OF m
  )
  UPDATE memories SET access_count = memories.access_count + locked.n,
    last_accessed_at = GREATEST(memories.last_accessed_at, locked.at)
  FROM locked
  WHERE memories.tenant = locked.tenant AND memories.id = locked.id`;

// Served by memories_importance (partial: live rows only); expiry is checked on the row.
const TOP_BY_IMPORTANCE_SQL = `SELECT ${MEMORY_COLUMNS} FROM memories
  WHERE tenant = $1 AND user_id = $2 AND deleted_at IS NULL
    AND (expires_at IS NULL OR expires_at > $3)
  ORDER BY importance DESC, id DESC
  LIMIT $4`;

const INSERT_SESSION_SQL = `INSERT INTO sessions (${SESSION_COLUMNS})
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13)`;
const GET_SESSION_SQL = `SELECT ${SESSION_COLUMNS} FROM sessions WHERE tenant = $1 AND id = $2`;
const LIST_SESSIONS_SQL = `SELECT ${SESSION_COLUMNS} FROM sessions
  WHERE tenant = $1 AND user_id = $2 ORDER BY id DESC LIMIT $3`;
const LIST_SESSIONS_BEFORE_SQL = `SELECT ${SESSION_COLUMNS} FROM sessions
  WHERE tenant = $1 AND user_id = $2 AND id < $3 ORDER BY id DESC LIMIT $4`;

// The state is a literal (not a parameter) in every sweeper query: the partial index
// sessions_due applies only when the planner can see that state = 'active'.
const DUE_SESSIONS_SQL = `SELECT tenant, id FROM sessions
  WHERE state = 'active' AND expires_at <= $1 ORDER BY expires_at LIMIT $2`;
const NEXT_EXPIRY_SQL = `SELECT expires_at FROM sessions
  WHERE state = 'active' ORDER BY expires_at LIMIT 1`;

// A concurrent end holds the row lock: this waits for it, then re-checks the state on the
// committed row (READ COMMITTED) and changes nothing when the session is no longer active.
const TOUCH_SESSION_SQL = `UPDATE sessions SET last_activity_at = $3, expires_at = $4,
    timeout_ms = $5, timeout_basis = $6::jsonb, message_count = message_count + $7
  WHERE tenant = $1 AND id = $2 AND state = 'active'
  RETURNING ${SESSION_COLUMNS}`;

// An append in one statement: the session row first (its lock keeps a concurrent end out
// until the statement commits), the messages ($1) only when it was still active.
const APPEND_SESSION_SQL = `WITH touched AS (
    UPDATE sessions SET last_activity_at = $4, expires_at = $5,
      timeout_ms = $6, timeout_basis = $7::jsonb, message_count = message_count + $8
    WHERE tenant = $2 AND id = $3 AND state = 'active'
    RETURNING ${SESSION_COLUMNS}
  ), ${insertRowsCtes('EXISTS (SELECT 1 FROM touched)')}
  SELECT * FROM touched`;

// The compare-and-set: of concurrent enders, the first to lock the row changes it; the others
// wait, find it no longer active and change nothing. An end after a concurrent append (which
// holds the row lock until it commits) finds a count other than the one it summarized.
const END_SESSION_SQL = `UPDATE sessions SET state = $3, ended_at = $4, expires_at = $4,
    summary_id = $5
  WHERE tenant = $1 AND id = $2 AND state = 'active' AND message_count = $6
  RETURNING ${SESSION_COLUMNS}`;

// An end and its summary ($1) in one statement: the summary only when the end won.
const END_SESSION_WITH_SUMMARY_SQL = `WITH ended AS (
    UPDATE sessions SET state = $4, ended_at = $5, expires_at = $5, summary_id = $6
    WHERE tenant = $2 AND id = $3 AND state = 'active' AND message_count = $7
    RETURNING ${SESSION_COLUMNS}
  ), ${insertRowsCtes('EXISTS (SELECT 1 FROM ended)')}
  SELECT * FROM ended`;

const GET_TIMEOUT_MODEL_SQL = `SELECT tenant, user_id, model, updated_at FROM timeout_models
  WHERE tenant = $1 AND user_id = $2`;
// Rows in the order of the arrays (distinct keys, sorted by the caller): concurrent upserts
// lock rows in the same order.
const PUT_TIMEOUT_MODELS_SQL = `INSERT INTO timeout_models (tenant, user_id, model, updated_at)
  SELECT tenant, user_id, model, updated_at
  FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
    WITH ORDINALITY AS m(tenant, user_id, model, updated_at, ord)
  ORDER BY ord
  ON CONFLICT (tenant, user_id) DO UPDATE SET
    model = EXCLUDED.model, updated_at = EXCLUDED.updated_at`;

/**
 * A batch of memories as the one JSON parameter of {@link INSERT_ROWS_SQL}: a 1,000-row batch
 * is one round trip. Embeddings as JSON arrays (a Float32Array would serialize as an object).
 */
function batchJson(rows: MemoryRow[]): string {
  return JSON.stringify(rows.map((r) => ({ ...r, embedding: embeddingToArray(r.embedding) })));
}

/** Thrown inside a transaction to roll it back when there is nothing to write. */
class NothingToWrite extends Error {
  override name = 'NothingToWrite';
}

/**
 * The websearch_to_tsquery text matching any of `words`: each one a quoted phrase (quotes
 * inside removed), so that no word is read as an operator (`or`, `-`).
 */
function websearchQuery(words: string[]): string {
  return words
    .map((w) => w.replaceAll('"', ''))
    .filter((w) => w.length > 0)
    .map((w) => `"${w}"`)
    .join(' or ');
}

/**
 * The shared store: a pg pool. Connection failures surface as {@link StoreUnavailable};
 * every write runs in one transaction that is committed before the method resolves.
 */
export class PostgresStore implements Store {
  readonly dialect = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #logger: PostgresStoreOptions['logger'];
  /** When each client was last handed back to the pool. */
  readonly #releasedAt = new WeakMap<pg.PoolClient, number>();
  /** Clients whose state is unknown (a failed ROLLBACK): destroyed on release. */
  readonly #broken = new WeakSet<pg.PoolClient>();
  #ended: Promise<void> | undefined;

  constructor(options: PostgresStoreOptions) {
    this.#logger = options.logger;
    const types = new pg.TypeOverrides();
    // Epoch milliseconds fit a double exactly; pg returns INT8 as a string by default.
    types.setTypeParser(20, Number);
    // JSONB as its text: the row mappers parse it (and share one frozen empty array or object
    // for the `[]` and `{}` most memories' tags and metadata are) instead of pg parsing every
    // value into a fresh one.
    types.setTypeParser(3802, (text: string) => text);
    this.#pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolMax,
      connectionTimeoutMillis: options.connectTimeoutMs,
      statement_timeout: options.statementTimeoutMs,
      // A server that answers nothing (a network partition without resets) never reaches its
      // statement_timeout: without a client-side deadline a query would wait forever.
      query_timeout: options.statementTimeoutMs + 1_000,
      idleTimeoutMillis: 30_000,
      application_name: 'engram',
      types,
    });
    this.#pool.on('error', (err) => this.#logger?.error({ err }, 'idle PostgreSQL client failed'));
  }

  // A checked-out client has no pool listener: without ours, a dropped connection between
  // two queries would emit an unhandled 'error' and crash the process.
  readonly #onClientError = (err: Error): void => {
    this.#logger?.error({ err }, 'PostgreSQL connection failed while in use');
  };

  async #acquire(): Promise<pg.PoolClient> {
    for (let attempt = 0; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.#pool.connect();
      } catch (err) {
        throw new StoreUnavailable('cannot connect to PostgreSQL', { cause: err });
      }
      const releasedAt = this.#releasedAt.get(client);
      if (releasedAt !== undefined && Date.now() - releasedAt > IDLE_CHECK_MS) {
        try {
          await client.query('SELECT 1');
        } catch (err) {
          client.release(err instanceof Error ? err : true);
          if (attempt === 0) continue;
          throw new StoreUnavailable('PostgreSQL connection failed its check', { cause: err });
        }
      }
      client.on('error', this.#onClientError);
      return client;
    }
  }

  #release(client: pg.PoolClient, err?: Error): void {
    client.off('error', this.#onClientError);
    const destroy = err ?? (this.#broken.has(client) ? true : undefined);
    if (!destroy) this.#releasedAt.set(client, Date.now());
    client.release(destroy);
  }

  /** Runs `fn` on a checked-out client; connection failures become {@link StoreUnavailable}. */
  async #using<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#acquire();
    try {
      const result = await fn(client);
      this.#release(client);
      return result;
    } catch (err) {
      if (isConnectionError(err)) {
        this.#release(client, err as Error);
        throw new StoreUnavailable('PostgreSQL connection failed', { cause: err });
      }
      this.#release(client);
      throw err;
    }
  }

  /** Runs `fn` inside BEGIN … COMMIT, rolling back when it throws. */
  #transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#using(async (client) => {
      await client.query('BEGIN');
      let result: T;
      try {
        result = await fn(client);
      } catch (err) {
        if (!isConnectionError(err)) {
          await client.query('ROLLBACK').catch(() => this.#broken.add(client));
        }
        throw err;
      }
      await client.query('COMMIT');
      return result;
    });
  }

  async #all(sql: string, params: unknown[]): Promise<Raw[]> {
    return this.#using(async (client) => (await client.query<Raw>(sql, params)).rows);
  }

  async #count(sql: string, params: unknown[]): Promise<number> {
    return this.#using(async (client) => (await client.query(sql, params)).rowCount ?? 0);
  }

  async migrate(): Promise<number> {
    return this.#transaction(async (client) => {
      // Lock before CREATE TABLE IF NOT EXISTS: that statement races too.
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
      );
      const { rows } = await client.query<Raw>('SELECT version FROM schema_migrations');
      const applied = new Set(rows.map((r) => r.version as number));
      let count = 0;
      for (const m of POSTGRES_MIGRATIONS) {
        if (applied.has(m.version)) continue;
        await client.query(m.sql);
        await client.query(
          'INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)',
          [m.version, m.name, Date.now()],
        );
        count++;
      }
      return count;
    });
  }

  async ping(): Promise<void> {
    await this.#all('SELECT 1', []);
  }

  stats(): PostgresStats {
    const pool = this.#pool;
    return {
      dialect: 'postgres',
      pool: {
        total: pool.totalCount,
        idle: pool.idleCount,
        waiting: pool.waitingCount,
        max: pool.options.max ?? 10,
      },
    };
  }

  async close(): Promise<void> {
    this.#ended ??= this.#pool.end();
    await this.#ended;
  }

  async #insertIdem(client: pg.PoolClient, rec: IdempotencyRecord): Promise<void> {
    // An expired record that the purge has not reached yet may be replaced. A concurrent
    // uncommitted insert of the same key makes this wait for it, then see its outcome.
    const result = await client.query(
      `INSERT INTO idempotency_keys (${IDEM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (tenant, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
         user_id = EXCLUDED.user_id, status = EXCLUDED.status, body = EXCLUDED.body,
         created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
       WHERE idempotency_keys.expires_at <= EXCLUDED.created_at`,
      [
        rec.tenant,
        rec.key,
        rec.fingerprint,
        rec.userId,
        rec.status,
        rec.body,
        rec.createdAt,
        rec.expiresAt,
      ],
    );
    if (result.rowCount === 0) throw new IdempotencyKeyTaken(rec.key);
  }

  /**
   * Inserts memories with a `create` history entry each: one statement (atomic by itself), so
   * one round trip, inside the caller's transaction or on its own.
   */
  async #insertRows(client: pg.PoolClient, rows: MemoryRow[]): Promise<void> {
    if (rows.length === 0) return;
    await client.query(INSERT_ROWS_SQL, [batchJson(rows)]);
  }

  async insertMemories(rows: MemoryRow[], idem?: IdempotencyRecord): Promise<void> {
    // Without an idempotency record the write is one statement: no BEGIN and COMMIT round
    // trips holding a pool client.
    if (!idem) {
      if (rows.length > 0) await this.#using((client) => this.#insertRows(client, rows));
      return;
    }
    await this.#transaction(async (client) => {
      await this.#insertRows(client, rows);
      await this.#insertIdem(client, idem);
    });
  }

  async getMemory(tenant: string, id: string): Promise<MemoryRow | null> {
    const [r] = await this.#all(SELECT_MEMORY, [tenant, id]);
    return r ? toRow(r) : null;
  }

  async mutateMemory(
    tenant: string,
    id: string,
    mutate: (current: MemoryRow) => Mutation,
    idem?: (row: MemoryRow) => IdempotencyRecord,
  ): Promise<MemoryRow | null> {
    // When the memory is missing, the empty transaction commits: nothing was read or locked.
    return this.#transaction(async (client): Promise<MemoryRow | null> => {
      const [raw] = (await client.query<Raw>(`${SELECT_MEMORY} FOR UPDATE`, [tenant, id])).rows;
      if (!raw) return null;
      const { row, op } = mutate(toRow(raw));
      // The update and its history entry in one statement (one round trip).
      await client.query(
        `WITH updated AS (
           UPDATE memories SET content = $1, kind = $2, tags = $3::jsonb, metadata = $4::jsonb,
             importance = $5, pinned = $6, updated_at = $7, expires_at = $8, deleted_at = $9,
             version = $10, embedding = $11::real[]
           WHERE tenant = $12 AND id = $13
         )
         INSERT INTO memory_history (tenant, memory_id, version, op, at, snapshot)
         VALUES ($12, $13, $10, $14, $7, $15)`,
        [
          row.content,
          row.kind,
          JSON.stringify(row.tags),
          JSON.stringify(row.metadata),
          row.importance,
          row.pinned,
          row.updatedAt,
          row.expiresAt,
          row.deletedAt,
          row.version,
          embeddingToArray(row.embedding),
          tenant,
          id,
          op,
          snapshotJson(row),
        ],
      );
      if (idem) await this.#insertIdem(client, idem(row));
      return row;
    });
  }

  #listSql(tenant: string, filter: ListFilter): Query {
    const cond = listConditions(filter, (tags) => ({
      sql: 'tags @> ?::jsonb',
      params: [JSON.stringify(tags)],
    }));
    const limit = cond.params.length + 3;
    return {
      sql: `SELECT ${MEMORY_COLUMNS} FROM memories WHERE tenant = $1 AND user_id = $2 AND ${numbered(cond.sql, 3)} ORDER BY id DESC LIMIT $${limit}`,
      params: [tenant, filter.userId, ...cond.params, filter.limit],
    };
  }

  async listMemories(tenant: string, filter: ListFilter): Promise<MemoryRow[]> {
    const { sql, params } = this.#listSql(tenant, filter);
    return (await this.#all(sql, params)).map(toRow);
  }

  async listHistory(tenant: string, memoryId: string): Promise<HistoryEntry[]> {
    const rows = await this.#all(SELECT_HISTORY, [tenant, memoryId]);
    return rows.map((r) => ({
      memoryId: r.memory_id as string,
      version: r.version as number,
      op: r.op as HistoryOp,
      at: r.at as number,
      snapshot: fromSnapshot(r.snapshot),
    }));
  }

  async countLiveMemories(tenant: string, userId: string, now: number): Promise<number> {
    const [r] = await this.#all(COUNT_LIVE_SQL, [tenant, userId, now]);
    return Number(r?.n ?? 0);
  }

  async searchText(
    tenant: string,
    userId: string,
    terms: string[],
    limit: number,
    now: number,
  ): Promise<TextCandidate[]> {
    const query = websearchQuery(searchWords(terms));
    if (query === '' || limit <= 0) return [];
    const rows = await this.#all(SEARCH_SQL, [tenant, userId, query, now, limit]);
    return rows.map((r) => ({ row: toRow(r), score: r.score as number }));
  }

  async recordAccess(deltas: AccessDelta[]): Promise<void> {
    const merged = mergeAccess(deltas);
    if (merged.length === 0) return;
    // Only the statistics columns: version, updated_at and history stay as they are.
    const params = (chunk: AccessDelta[]): unknown[] => [
      chunk.map((d) => d.tenant),
      chunk.map((d) => d.id),
      chunk.map((d) => d.count),
      chunk.map((d) => d.at),
    ];
    // One chunk is one statement: no BEGIN and COMMIT round trips.
    if (merged.length <= ACCESS_CHUNK) {
      await this.#all(RECORD_ACCESS_SQL, params(merged));
      return;
    }
    await this.#transaction(async (client) => {
      for (let i = 0; i < merged.length; i += ACCESS_CHUNK) {
        await client.query(RECORD_ACCESS_SQL, params(merged.slice(i, i + ACCESS_CHUNK)));
      }
    });
  }

  async topByImportance(
    tenant: string,
    userId: string,
    limit: number,
    now: number,
  ): Promise<MemoryRow[]> {
    if (limit <= 0) return [];
    return (await this.#all(TOP_BY_IMPORTANCE_SQL, [tenant, userId, now, limit])).map(toRow);
  }

  async insertSession(session: SessionRow): Promise<void> {
    await this.#all(INSERT_SESSION_SQL, sessionValues(session));
  }

  async getSession(tenant: string, id: string): Promise<SessionRow | null> {
    const [r] = await this.#all(GET_SESSION_SQL, [tenant, id]);
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
        ? await this.#all(LIST_SESSIONS_SQL, [tenant, userId, limit])
        : await this.#all(LIST_SESSIONS_BEFORE_SQL, [tenant, userId, beforeId, limit]);
    return rows.map(toSession);
  }

  async touchSession(
    tenant: string,
    id: string,
    activity: SessionActivity,
  ): Promise<SessionRow | null> {
    const [r] = await this.#all(TOUCH_SESSION_SQL, [tenant, id, ...activityValues(activity)]);
    return r ? toSession(r) : null;
  }

  async appendSessionMessages(
    tenant: string,
    id: string,
    rows: MemoryRow[],
    activity: SessionActivity,
    idem?: IdempotencyRecord,
  ): Promise<SessionRow | null> {
    // The session first: its row lock keeps a concurrent end out until this commits (that end
    // then finds another message count), and when it is no longer active nothing is inserted.
    // One statement (one round trip, atomic by itself); in a transaction only with an
    // idempotency record, which rolls everything back when its key is taken.
    const params = [batchJson(rows), tenant, id, ...activityValues(activity)];
    if (!idem) {
      const [r] = await this.#all(APPEND_SESSION_SQL, params);
      return r ? toSession(r) : null;
    }
    try {
      return await this.#transaction(async (client): Promise<SessionRow> => {
        const [r] = (await client.query<Raw>(APPEND_SESSION_SQL, params)).rows;
        if (!r) throw new NothingToWrite();
        await this.#insertIdem(client, idem);
        return toSession(r);
      });
    } catch (err) {
      if (err instanceof NothingToWrite) return null;
      throw err;
    }
  }

  async endSession(tenant: string, id: string, end: SessionEnd): Promise<SessionRow | null> {
    // One statement, the summary inserted only when this end won the compare-and-set: the
    // loser changes nothing.
    const values = [
      tenant,
      id,
      end.state,
      end.endedAt,
      end.summary?.id ?? null,
      end.expectedMessages,
    ];
    const [r] = end.summary
      ? await this.#all(END_SESSION_WITH_SUMMARY_SQL, [batchJson([end.summary]), ...values])
      : await this.#all(END_SESSION_SQL, values);
    return r ? toSession(r) : null;
  }

  async dueSessions(now: number, limit: number): Promise<Array<{ tenant: string; id: string }>> {
    if (limit <= 0) return [];
    const rows = await this.#all(DUE_SESSIONS_SQL, [now, limit]);
    return rows.map((r) => ({ tenant: r.tenant as string, id: r.id as string }));
  }

  async nextSessionExpiry(): Promise<number | null> {
    const [r] = await this.#all(NEXT_EXPIRY_SQL, []);
    return r ? (r.expires_at as number) : null;
  }

  async getTimeoutModel(tenant: string, userId: string): Promise<TimeoutModelRow | null> {
    const [r] = await this.#all(GET_TIMEOUT_MODEL_SQL, [tenant, userId]);
    return r ? toTimeoutModel(r) : null;
  }

  async putTimeoutModels(rows: TimeoutModelRow[]): Promise<void> {
    const models = latestModels(rows);
    if (models.length === 0) return;
    await this.#all(PUT_TIMEOUT_MODELS_SQL, [
      models.map((m) => m.tenant),
      models.map((m) => m.userId),
      models.map((m) => m.model),
      models.map((m) => m.updatedAt),
    ]);
  }

  async exportMemories(
    tenant: string,
    userId: string,
    afterId: string | null,
    limit: number,
    now: number,
  ): Promise<MemoryRow[]> {
    return (await this.#all(EXPORT_SQL, [tenant, userId, afterId ?? '', now, limit])).map(toRow);
  }

  async eraseUserChunk(tenant: string, userId: string, limit: number): Promise<number> {
    return this.#count(ERASE_SQL, [tenant, userId, limit]);
  }

  async eraseUserRecords(tenant: string, userId: string): Promise<number> {
    return this.#transaction(async (client) => {
      for (const table of ['user_activity', 'sessions', 'timeout_models']) {
        await client.query(`DELETE FROM ${table} WHERE tenant = $1 AND user_id = $2`, [
          tenant,
          userId,
        ]);
      }
      const result = await client.query(
        'DELETE FROM idempotency_keys WHERE tenant = $1 AND user_id = $2',
        [tenant, userId],
      );
      return result.rowCount ?? 0;
    });
  }

  async recordActivity(deltas: ActivityDelta[]): Promise<void> {
    if (deltas.length === 0) return;
    await this.#transaction(async (client) => {
      // Read the stored counts under lock, merge here, write all rows back in one statement.
      const { rows } = await client.query<Raw>(
        `SELECT tenant, user_id, hours FROM user_activity
         WHERE (tenant, user_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
         ORDER BY tenant, user_id FOR UPDATE`,
        [deltas.map((d) => d.tenant), deltas.map((d) => d.userId)],
      );
      const stored = new Map(rows.map((r) => [`${r.tenant}\0${r.user_id}`, r.hours as string]));
      const merged = deltas.map((d) =>
        mergeHours(stored.get(`${d.tenant}\0${d.userId}`) ?? null, d),
      );
      await client.query(
        `INSERT INTO user_activity (tenant, user_id, last_seen_at, hours, usual_hour)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::int[])
         ON CONFLICT (tenant, user_id) DO UPDATE SET
           last_seen_at = GREATEST(user_activity.last_seen_at, EXCLUDED.last_seen_at),
           hours = EXCLUDED.hours, usual_hour = EXCLUDED.usual_hour`,
        [
          deltas.map((d) => d.tenant),
          deltas.map((d) => d.userId),
          deltas.map((d) => d.lastSeenAt),
          merged.map((m) => m.text),
          merged.map((m) => m.usual),
        ],
      );
    });
  }

  async recentlyActiveUsers(since: number, limit: number): Promise<ActiveUser[]> {
    const rows = await this.#all(numbered(ACTIVITY_SQL.recent, 1), [since, limit]);
    return rows.map((r) => ({ tenant: r.tenant as string, userId: r.user_id as string }));
  }

  async usersUsuallyActiveAt(hour: number, since: number, limit: number): Promise<ActiveUser[]> {
    const rows = await this.#all(numbered(ACTIVITY_SQL.usual, 1), [hour, since, limit]);
    return rows.map((r) => ({ tenant: r.tenant as string, userId: r.user_id as string }));
  }

  async purgeExpired(now: number, limit: number): Promise<number> {
    return this.#count(PURGE_EXPIRED_SQL, [now, limit]);
  }

  async purgeDeleted(cutoff: number, limit: number): Promise<number> {
    return this.#count(PURGE_DELETED_SQL, [cutoff, limit]);
  }

  async purgeIdempotency(now: number, limit: number): Promise<number> {
    return this.#count(PURGE_IDEM_SQL, [now, limit]);
  }

  async getIdempotency(
    tenant: string,
    key: string,
    now: number,
  ): Promise<IdempotencyRecord | null> {
    const [r] = await this.#all(GET_IDEM_SQL, [tenant, key, now]);
    return r ? toIdem(r) : null;
  }

  async putIdempotency(record: IdempotencyRecord): Promise<void> {
    await this.#using((client) => this.#insertIdem(client, record));
  }

  async insertApiKey(key: ApiKeyRow): Promise<void> {
    await this.#all(`INSERT INTO api_keys (${KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)`, [
      key.id,
      key.tenant,
      key.hash,
      key.label,
      key.createdAt,
      key.revokedAt,
    ]);
  }

  async findApiKey(id: string): Promise<ApiKeyRow | null> {
    const [r] = await this.#all(FIND_KEY_SQL, [id]);
    return r ? toKey(r) : null;
  }

  async listApiKeys(): Promise<ApiKeyRow[]> {
    return (await this.#all(`SELECT ${KEY_COLUMNS} FROM api_keys ORDER BY created_at, id`, [])).map(
      toKey,
    );
  }

  async revokeApiKey(id: string, at: number): Promise<boolean> {
    const changed = await this.#count(
      'UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL',
      [at, id],
    );
    return changed > 0;
  }

  /** With sequential scans disabled, a "Seq Scan on memories" in the plan means no usable index. */
  async explain(query: PlannedQuery): Promise<string> {
    const { id } = PLAN_SAMPLES;
    const plans: Record<PlannedQuery, Query> = {
      getMemory: { sql: SELECT_MEMORY, params: ['t', id] },
      listMemories: this.#listSql('t', PLAN_SAMPLES.list),
      listMemoriesFiltered: this.#listSql('t', PLAN_SAMPLES.listFiltered),
      listMemoriesBySession: this.#listSql('t', PLAN_SAMPLES.listBySession),
      listHistory: { sql: SELECT_HISTORY, params: ['t', id] },
      exportMemories: { sql: EXPORT_SQL, params: ['t', 'u', '', 0, 500] },
      eraseUserChunk: { sql: ERASE_SQL, params: ['t', 'u', 500] },
      purgeExpired: { sql: PURGE_EXPIRED_SQL, params: [0, 500] },
      purgeDeleted: { sql: PURGE_DELETED_SQL, params: [0, 500] },
      getIdempotency: { sql: GET_IDEM_SQL, params: ['t', 'k', 0] },
      findApiKey: { sql: FIND_KEY_SQL, params: ['k'] },
      recentlyActiveUsers: { sql: numbered(ACTIVITY_SQL.recent, 1), params: [0, 100] },
      usersUsuallyActiveAt: { sql: numbered(ACTIVITY_SQL.usual, 1), params: [3, 0, 100] },
      searchText: {
        sql: SEARCH_SQL,
        params: ['t', 'u', websearchQuery(PLAN_SAMPLES.search.terms), 0, PLAN_SAMPLES.search.limit],
      },
      countLiveMemories: { sql: COUNT_LIVE_SQL, params: ['t', 'u', 0] },
      topByImportance: { sql: TOP_BY_IMPORTANCE_SQL, params: ['t', 'u', 0, 20] },
      getSession: { sql: GET_SESSION_SQL, params: ['t', id] },
      listSessions: { sql: LIST_SESSIONS_BEFORE_SQL, params: ['t', 'u', id, 50] },
      dueSessions: { sql: DUE_SESSIONS_SQL, params: [0, 100] },
      getTimeoutModel: { sql: GET_TIMEOUT_MODEL_SQL, params: ['t', 'u'] },
    };
    const { sql, params } = plans[query];
    // SET LOCAL inside a rolled-back transaction: the setting cannot leak into the pool, and
    // EXPLAIN without ANALYZE executes nothing anyway.
    return this.#using(async (client) => {
      await client.query('BEGIN');
      try {
        await client.query('SET LOCAL enable_seqscan = off');
        const { rows } = await client.query<Raw>(`EXPLAIN ${sql}`, params);
        return rows.map((r) => String(r['QUERY PLAN'])).join('\n');
      } finally {
        await client.query('ROLLBACK').catch(() => this.#broken.add(client));
      }
    });
  }
}
