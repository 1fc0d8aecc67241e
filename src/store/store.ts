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
} from '../memory/memory-types.ts';
import type { SessionActivity, SessionRow, TimeoutModelRow } from '../sessions/session-types.ts';

/** The result of a mutation callback: the next state of the memory and what to record. */
export interface Mutation {
  row: MemoryRow;
  op: HistoryOp;
}

/** How a session ends ({@link Store.endSession}). */
export interface SessionEnd {
  state: 'ended' | 'expired';
  endedAt: number;
  /** The summary memory to insert and link, if any. */
  summary: MemoryRow | null;
  /** The session's message count the summary was made from. */
  expectedMessages: number;
}

/** Names of the queries whose plans the index test reads. */
export const PLANNED_QUERIES = [
  'getMemory',
  'listMemories',
  'listMemoriesFiltered',
  'listMemoriesBySession',
  'listHistory',
  'exportMemories',
  'eraseUserChunk',
  'purgeExpired',
  'purgeDeleted',
  'getIdempotency',
  'findApiKey',
  'recentlyActiveUsers',
  'usersUsuallyActiveAt',
  'searchText',
  'countLiveMemories',
  'topByImportance',
  'getSession',
  'listSessions',
  'dueSessions',
  'getTimeoutModel',
] as const;

/** A query name from {@link PLANNED_QUERIES}. */
export type PlannedQuery = (typeof PLANNED_QUERIES)[number];

/** The embedded store's write-ahead log and its checkpoints. */
export interface SqliteStats {
  dialect: 'sqlite';
  /** Size of the log file now, and the size past which writes wait for a full checkpoint. */
  walBytes: number;
  walMaxBytes: number;
  /** Writes that waited for the log to be checkpointed, and how long in all (ms). */
  walWaits: { count: number; ms: number };
  /**
   * The log's flushes to disk (`fdatasync`, one at a time, each write acknowledged after one):
   * how many, their time in all and the longest (ms). Over a period, `ms` over its length is the
   * share of it the disk kept acknowledgements waiting.
   */
  walFlushes: { count: number; ms: number; maxMs: number };
  /** The checkpoint worker's counts; null before the first write or for an in-memory file. */
  checkpoints: { count: number; frames: number; maxMs: number; failed: boolean } | null;
}

/** The shared store's connection pool. */
export interface PostgresStats {
  dialect: 'postgres';
  pool: { total: number; idle: number; waiting: number; max: number };
}

/** What a store reports of its own state (`GET /v1/stats/store`). */
export type StoreStats = SqliteStats | PostgresStats;

/**
 * The system of record. Each method is one transaction: a write resolves only once it is
 * committed (durably: SQLite's WAL flushed to disk, PostgreSQL commit).
 */
export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  /** Applies pending migrations; returns how many were applied. */
  migrate(): Promise<number>;
  /** Resolves when the store answers a trivial query (on every connection it writes with). */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** The store's own state, read without a query: log and checkpoints, or the pool. */
  stats(): StoreStats;

  /**
   * Inserts memories (and a `create` history entry for each) in one transaction, together
   * with the idempotency record when given. Throws {@link IdempotencyKeyTaken} when another
   * request committed the same key first; nothing is written then.
   */
  insertMemories(rows: MemoryRow[], idem?: IdempotencyRecord): Promise<void>;
  /** One memory by id within a tenant, deleted or expired ones included (callers decide). */
  getMemory(tenant: string, id: string): Promise<MemoryRow | null>;
  /**
   * Reads a memory under a row lock, applies `mutate` (a synchronous function that may throw
   * to abort), writes the result and a history entry, and the idempotency record built from
   * the new row when `idem` is given. Returns null when the memory does not exist.
   */
  mutateMemory(
    tenant: string,
    id: string,
    mutate: (current: MemoryRow) => Mutation,
    idem?: (row: MemoryRow) => IdempotencyRecord,
  ): Promise<MemoryRow | null>;
  /** A page of a user's live memories, newest first. */
  listMemories(tenant: string, filter: ListFilter): Promise<MemoryRow[]>;
  /** How many live memories a user has (deleted and expired ones left out). */
  countLiveMemories(tenant: string, userId: string, now: number): Promise<number>;
  /**
   * A user's live memories whose content, tags or kind match any of `terms` (plain words, as
   * the search tokenizer produced them; the adapter quotes or escapes them), best first by a
   * full-text score (PostgreSQL: ts_rank; SQLite: FTS5's BM25 over the user's own postings),
   * at most `limit`. For users whose in-process index is not held.
   */
  searchText(
    tenant: string,
    userId: string,
    terms: string[],
    limit: number,
    now: number,
  ): Promise<TextCandidate[]>;
  /**
   * Adds access counts and moves `lastAccessedAt` forward (never back). Changes neither the
   * memory's version nor its history: access statistics are not edits. Missing ids are skipped.
   */
  recordAccess(deltas: AccessDelta[]): Promise<void>;
  /**
   * A user's live memories with the highest importance (ties: newest first), at most `limit`;
   * for the preload bundle when the user's search index is not in memory.
   */
  topByImportance(tenant: string, userId: string, limit: number, now: number): Promise<MemoryRow[]>;

  /** Inserts a new session. */
  insertSession(session: SessionRow): Promise<void>;
  /** One session by id within a tenant, whatever its state. */
  getSession(tenant: string, id: string): Promise<SessionRow | null>;
  /** A page of a user's sessions, newest first, with ids strictly below `beforeId` if given. */
  listSessions(
    tenant: string,
    userId: string,
    beforeId: string | null,
    limit: number,
  ): Promise<SessionRow[]>;
  /**
   * Records activity of an active session: last activity, expiry, timeout in force and basis,
   * and adds `messages` to its count. Returns the session after the change, or null when it
   * does not exist or is no longer active (nothing is changed then).
   */
  touchSession(tenant: string, id: string, activity: SessionActivity): Promise<SessionRow | null>;
  /**
   * Appends messages to an active session in one transaction: the session moves on as
   * {@link touchSession} moves it (`activity.messages`, normally `rows.length`, is added to its
   * count), and `rows` are inserted as {@link insertMemories} inserts them (a `create` history
   * entry each, found by search), together with the idempotency record when given. Returns
   * the session after the change, or null when it does not exist or is no longer active: no
   * row is written then. Throws {@link IdempotencyKeyTaken} when another request committed
   * the same key first; nothing is written then either (the session is not moved).
   */
  appendSessionMessages(
    tenant: string,
    id: string,
    rows: MemoryRow[],
    activity: SessionActivity,
    idem?: IdempotencyRecord,
  ): Promise<SessionRow | null>;
  /**
   * Ends an active session in one transaction: state `ended` or `expired`, `endedAt`, and the
   * summary memory inserted (with its history entry) and linked, when given. A compare-and-set
   * on the state and the message count: the session ends only while it is still active and
   * holds exactly `expectedMessages` messages (the count the caller read the messages at, and
   * summarized). Otherwise — another caller ended it first, or messages were appended since
   * ({@link appendSessionMessages}) — it returns null and writes nothing; the caller may read
   * the session and its messages again and retry.
   */
  endSession(tenant: string, id: string, end: SessionEnd): Promise<SessionRow | null>;
  /** Active sessions whose expiry is at or before `now` (any tenant), soonest first. */
  dueSessions(now: number, limit: number): Promise<Array<{ tenant: string; id: string }>>;
  /** The earliest expiry of any active session, or null when none is active. */
  nextSessionExpiry(): Promise<number | null>;
  /** A user's serialized timeout model, or null. */
  getTimeoutModel(tenant: string, userId: string): Promise<TimeoutModelRow | null>;
  /** Inserts or replaces users' timeout models. */
  putTimeoutModels(rows: TimeoutModelRow[]): Promise<void>;

  /** All history entries of a memory, oldest first. */
  listHistory(tenant: string, memoryId: string): Promise<HistoryEntry[]>;
  /** A chunk of a user's live memories in ascending id order, after `afterId`. */
  exportMemories(
    tenant: string,
    userId: string,
    afterId: string | null,
    limit: number,
    now: number,
  ): Promise<MemoryRow[]>;
  /** Deletes up to `limit` of a user's memories (with their history); returns the count. */
  eraseUserChunk(tenant: string, userId: string, limit: number): Promise<number>;
  /**
   * Deletes the user's remembered idempotent responses, activity, sessions and timeout model;
   * returns the count of idempotency records deleted.
   */
  eraseUserRecords(tenant: string, userId: string): Promise<number>;
  /** Hard-deletes up to `limit` memories whose `expiresAt` is at or before `now`. */
  purgeExpired(now: number, limit: number): Promise<number>;
  /** Hard-deletes up to `limit` memories soft-deleted at or before `cutoff`. */
  purgeDeleted(cutoff: number, limit: number): Promise<number>;
  /** Deletes up to `limit` idempotency records that expired at or before `now`. */
  purgeIdempotency(now: number, limit: number): Promise<number>;

  /** The live idempotency record of a key, or null. */
  getIdempotency(tenant: string, key: string, now: number): Promise<IdempotencyRecord | null>;
  /** Stores an idempotency record; throws {@link IdempotencyKeyTaken} if the key exists. */
  putIdempotency(record: IdempotencyRecord): Promise<void>;

  /** Merges activity counts into each user's record (last seen, counts per UTC hour). */
  recordActivity(deltas: ActivityDelta[]): Promise<void>;
  /** Users seen since `since`, most recent first. */
  recentlyActiveUsers(since: number, limit: number): Promise<ActiveUser[]>;
  /** Users seen since `since` whose busiest UTC hour is `hour`, most recent first. */
  usersUsuallyActiveAt(hour: number, since: number, limit: number): Promise<ActiveUser[]>;

  insertApiKey(key: ApiKeyRow): Promise<void>;
  findApiKey(id: string): Promise<ApiKeyRow | null>;
  listApiKeys(): Promise<ApiKeyRow[]>;
  /** Marks a key revoked; returns false when no active key has that id. */
  revokeApiKey(id: string, at: number): Promise<boolean>;

  /** The query plan of a named query, as text (for the index test). */
  explain(query: PlannedQuery): Promise<string>;
}

/** Raised when an idempotency key was committed by a concurrent request. */
export class IdempotencyKeyTaken extends Error {
  override name = 'IdempotencyKeyTaken';
}

/** Raised when the store cannot be reached or fails for reasons outside the request. */
export class StoreUnavailable extends Error {
  override name = 'StoreUnavailable';
}

// SQLite reports a locked, full or failing database with these result codes.
const SQLITE_UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY)/;

/** Whether an error means the store could not do its work now (503), not a bad request. */
export function isStoreUnavailable(err: unknown): boolean {
  if (err instanceof StoreUnavailable) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && SQLITE_UNAVAILABLE.test(code);
}
