import { resolve } from 'node:path';
import { type Static, Type } from 'typebox';
import { Value } from 'typebox/value';
import type { CacheConfig } from './cache/create-cache.ts';

/**
 * Environment schema: every key Engram reads, with its default for the embedded mode.
 * `.env.example` documents the same keys; a test keeps the two in step.
 */
export const EnvSchema = Type.Object({
  /** Interface to listen on. @default 127.0.0.1 */
  ENGRAM_HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  /** TCP port. @default 8080 */
  ENGRAM_PORT: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
  /** Directory for the SQLite file and the bootstrap key file. @default ./data */
  ENGRAM_DATA_DIR: Type.String({ default: './data', minLength: 1 }),
  /** PostgreSQL connection string; when empty the embedded SQLite store is used. */
  DATABASE_URL: Type.String({ default: '' }),
  /**
   * Page cache of each SQLite connection (the writer and the reader), in KiB. better-sqlite3
   * builds SQLite with 16,000; the operating system caches the file as well. @default 4096
   */
  ENGRAM_SQLITE_CACHE_KIB: Type.Integer({ default: 4096, minimum: 64, maximum: 4_194_304 }),
  /**
   * Size of SQLite's write-ahead log past which writes wait for a checkpoint of all of it (and
   * the size its file is cut back to). @default 268435456
   */
  ENGRAM_SQLITE_WAL_MAX_BYTES: Type.Integer({
    default: 268_435_456,
    minimum: 1_048_576,
    maximum: 2 ** 40,
  }),
  /**
   * Whether SQLite's writer connection runs on a thread of its own (false: on the event loop
   * that answers requests, as before the writer thread). @default true
   */
  ENGRAM_SQLITE_WRITER_THREAD: Type.Boolean({ default: true }),
  /** Upper bound of PostgreSQL pool clients (small pools beat big ones). @default 8 */
  ENGRAM_PG_POOL_MAX: Type.Integer({ default: 8, minimum: 1, maximum: 200 }),
  /** Time to wait for a PostgreSQL connection before failing. @default 2000 */
  ENGRAM_PG_CONNECT_TIMEOUT_MS: Type.Integer({ default: 2000, minimum: 100, maximum: 60000 }),
  /** Server-side `statement_timeout` of every PostgreSQL session. @default 5000 */
  ENGRAM_PG_STATEMENT_TIMEOUT_MS: Type.Integer({ default: 5000, minimum: 100, maximum: 600000 }),
  /** pino log level. @default info */
  ENGRAM_LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    default: 'info',
  }),
  /** Largest accepted request body in bytes. @default 1048576 */
  ENGRAM_BODY_LIMIT_BYTES: Type.Integer({ default: 1_048_576, minimum: 1024, maximum: 67_108_864 }),
  /** Whole-request deadline (headers and body); cuts slow bodies. @default 30000 */
  ENGRAM_REQUEST_TIMEOUT_MS: Type.Integer({ default: 30_000, minimum: 100, maximum: 600_000 }),
  /** Largest accepted header block in bytes (bigger → 431). @default 16384 */
  ENGRAM_MAX_HEADER_BYTES: Type.Integer({ default: 16_384, minimum: 1024, maximum: 65_536 }),
  /** Deadline for a graceful shutdown before the process exits anyway. @default 10000 */
  ENGRAM_SHUTDOWN_TIMEOUT_MS: Type.Integer({ default: 10_000, minimum: 100, maximum: 120_000 }),
  /** How long a deleted memory can be restored before it is purged. @default 30 */
  ENGRAM_DELETE_GRACE_DAYS: Type.Number({ default: 30, minimum: 0, maximum: 3650 }),
  /** How long an Idempotency-Key is remembered. @default 24 */
  ENGRAM_IDEMPOTENCY_TTL_HOURS: Type.Number({ default: 24, minimum: 1, maximum: 720 }),
  /** Period of the background purge (expired, deleted past grace, old idempotency keys). @default 60000 */
  ENGRAM_PURGE_INTERVAL_MS: Type.Integer({ default: 60_000, minimum: 100, maximum: 86_400_000 }),
  /** Redis connection string; when set, Redis holds L2 and carries the invalidation bus. */
  REDIS_URL: Type.String({ default: '' }),
  /** Deadline of each Redis command; slower counts as a failure (served without Redis). @default 100 */
  ENGRAM_REDIS_TIMEOUT_MS: Type.Integer({ default: 100, minimum: 5, maximum: 10_000 }),
  /** Bytes the in-process cache (L1) may hold. @default 67108864 */
  ENGRAM_CACHE_L1_MAX_BYTES: Type.Integer({ default: 67_108_864, minimum: 0, maximum: 2 ** 40 }),
  /**
   * How long an instance trusts its copy of a user's version without Redis confirming it: the
   * longest a read can be stale while the bus is down. @default 10000
   */
  ENGRAM_CACHE_L1_TTL_MS: Type.Integer({ default: 10_000, minimum: 100, maximum: 3_600_000 }),
  /** How long a cached answer is fresh (±10% jitter). @default 300000 */
  ENGRAM_CACHE_TTL_MS: Type.Integer({ default: 300_000, minimum: 1_000, maximum: 86_400_000 }),
  /** How long after that a cached answer may be served, marked stale, while the store fails. @default 600000 */
  ENGRAM_CACHE_GRACE_MS: Type.Integer({ default: 600_000, minimum: 0, maximum: 86_400_000 }),
  /** A store read slower than this fails (and is answered from cache within grace). @default 2000 */
  ENGRAM_STORE_TIMEOUT_MS: Type.Integer({ default: 2_000, minimum: 10, maximum: 600_000 }),
  /** Warming loads running at once (never more, so live traffic keeps the store). @default 2 */
  ENGRAM_WARM_CONCURRENCY: Type.Integer({ default: 2, minimum: 1, maximum: 64 }),
  /** Most recently active users warmed at boot (0: none). @default 1000 */
  ENGRAM_WARM_BOOT_USERS: Type.Integer({ default: 1000, minimum: 0, maximum: 1_000_000 }),
  /** Users warmed ahead of the hour they are usually active in (0: none). @default 1000 */
  ENGRAM_WARM_AHEAD_USERS: Type.Integer({ default: 1000, minimum: 0, maximum: 1_000_000 }),
  /** Period of ahead-of-time warming. @default 900000 */
  ENGRAM_WARM_INTERVAL_MS: Type.Integer({ default: 900_000, minimum: 1_000, maximum: 86_400_000 }),
  /** Period of the write-behind of user activity (which guides warming). @default 10000 */
  ENGRAM_ACTIVITY_FLUSH_MS: Type.Integer({ default: 10_000, minimum: 100, maximum: 3_600_000 }),
  /** Half-life of the recency signal of search, in days. @default 30 */
  ENGRAM_SEARCH_HALF_LIFE_DAYS: Type.Number({ default: 30, minimum: 0.01, maximum: 36500 }),
  /** Users with more memories than this are searched through the store's full-text index. @default 20000 */
  ENGRAM_SEARCH_INDEX_MAX_MEMORIES: Type.Integer({
    default: 20_000,
    minimum: 1,
    maximum: 1_000_000,
  }),
  /** Bytes the in-process per-user search indexes may hold. @default 134217728 */
  ENGRAM_SEARCH_INDEX_MAX_BYTES: Type.Integer({
    default: 134_217_728,
    minimum: 0,
    maximum: 2 ** 40,
  }),
  /** Candidates read from the store's full-text index for a user too large to index. @default 1000 */
  ENGRAM_SEARCH_FTS_CANDIDATES: Type.Integer({ default: 1000, minimum: 10, maximum: 10_000 }),
  /**
   * How far V8 lets the heap grow past its live size after a full collection, in percent (the
   * next collection starts at live × (1 + p/100)); 0 leaves V8's own factor, up to 4×, which
   * let a server with 200 MB live reach 500–900 MB RSS. 20 held the soak at 506 MiB but cost
   * the mix (512 MiB of indexes) 14% of its saturation and doubled its open-loop p99: opt-in.
   * @default 0
   */
  ENGRAM_HEAP_GROWING_PERCENT: Type.Integer({ default: 0, minimum: 0, maximum: 300 }),
  /** Period of the write-behind of access counts of search results. @default 10000 */
  ENGRAM_ACCESS_FLUSH_MS: Type.Integer({ default: 10_000, minimum: 10, maximum: 3_600_000 }),
  /** OpenAI-compatible embeddings endpoint (…/v1/embeddings); empty: search without vectors. */
  ENGRAM_EMBEDDINGS_URL: Type.String({ default: '' }),
  /** Model name sent to the embeddings endpoint. @default text-embedding-3-small */
  ENGRAM_EMBEDDINGS_MODEL: Type.String({ default: 'text-embedding-3-small', minLength: 1 }),
  /** Bearer key of the embeddings endpoint, if it needs one. */
  ENGRAM_EMBEDDINGS_API_KEY: Type.String({ default: '' }),
  /** Deadline of one embeddings request. @default 5000 */
  ENGRAM_EMBEDDINGS_TIMEOUT_MS: Type.Integer({ default: 5000, minimum: 50, maximum: 120_000 }),
  /** Embeddings kept in process, keyed by a hash of the text. @default 10000 */
  ENGRAM_EMBEDDINGS_CACHE_ENTRIES: Type.Integer({
    default: 10_000,
    minimum: 0,
    maximum: 10_000_000,
  }),
  /** Idle timeout of a new user's sessions (no learned model yet). @default 1800000 */
  ENGRAM_SESSION_TIMEOUT_DEFAULT_MS: Type.Integer({
    default: 1_800_000,
    minimum: 1000,
    maximum: 604_800_000,
  }),
  /** Shortest learned idle timeout. @default 120000 */
  ENGRAM_SESSION_TIMEOUT_MIN_MS: Type.Integer({
    default: 120_000,
    minimum: 1000,
    maximum: 604_800_000,
  }),
  /** Longest learned idle timeout. @default 7200000 */
  ENGRAM_SESSION_TIMEOUT_MAX_MS: Type.Integer({
    default: 7_200_000,
    minimum: 1000,
    maximum: 604_800_000,
  }),
  /** Quantile of a user's within-session gaps the timeout is learned from. @default 0.95 */
  ENGRAM_SESSION_TIMEOUT_QUANTILE: Type.Number({ default: 0.95, minimum: 0.5, maximum: 0.999 }),
  /** Factor applied to that quantile. @default 1.5 */
  ENGRAM_SESSION_TIMEOUT_MARGIN: Type.Number({ default: 1.5, minimum: 1, maximum: 10 }),
  /** Longest wait of the expiry sweeper between two looks at the store. @default 1000 */
  ENGRAM_SESSION_SWEEP_MS: Type.Integer({ default: 1000, minimum: 10, maximum: 600_000 }),
  /** Recent messages shown with a session. @default 20 */
  ENGRAM_SESSION_WINDOW: Type.Integer({ default: 20, minimum: 1, maximum: 500 }),
  /** Cold users with at most this many memories get their index built for a session start (0: never). @default 500 */
  ENGRAM_SESSION_PRELOAD_BUILD_MAX: Type.Integer({ default: 500, minimum: 0, maximum: 1_000_000 }),
  /** Create and print a key on first start when none exists (embedded mode only). @default true */
  ENGRAM_BOOTSTRAP_KEY: Type.Boolean({ default: true }),
});

/** The validated environment, as typed values. */
export type Env = Static<typeof EnvSchema>;

/** Engram's configuration, derived once from the environment. */
export interface Config {
  host: string;
  port: number;
  dataDir: string;
  store:
    | {
        kind: 'sqlite';
        file: string;
        cacheKiB: number;
        walMaxBytes: number;
        writerThread: boolean;
      }
    | {
        kind: 'postgres';
        url: string;
        poolMax: number;
        connectTimeoutMs: number;
        statementTimeoutMs: number;
      };
  logLevel: Env['ENGRAM_LOG_LEVEL'];
  bodyLimitBytes: number;
  requestTimeoutMs: number;
  maxHeaderBytes: number;
  shutdownTimeoutMs: number;
  heapGrowingPercent: number;
  deleteGraceMs: number;
  idempotencyTtlMs: number;
  purgeIntervalMs: number;
  bootstrapKey: boolean;
  cache: CacheConfig;
  storeTimeoutMs: number;
  warm: { concurrency: number; bootUsers: number; aheadUsers: number; intervalMs: number };
  activityFlushMs: number;
  search: SearchConfig;
  sessions: SessionConfig;
  /** Null when no embeddings endpoint is configured: search is lexical plus signals. */
  embeddings: EmbeddingsConfig | null;
  /** Where the bootstrap key is written (owner-only permissions). */
  keyFile: string;
}

/** Search settings. */
export interface SearchConfig {
  halfLifeMs: number;
  indexMaxMemories: number;
  indexMaxBytes: number;
  ftsCandidates: number;
  accessFlushMs: number;
}

/** Session settings. */
export interface SessionConfig {
  timeout: {
    defaultMs: number;
    minMs: number;
    maxMs: number;
    quantile: number;
    margin: number;
  };
  sweepMs: number;
  window: number;
  /** Cold users with at most this many memories get their index built for a start. */
  preloadBuildMax: number;
}

/** An OpenAI-compatible embeddings endpoint. */
export interface EmbeddingsConfig {
  url: string;
  model: string;
  apiKey: string;
  timeoutMs: number;
  cacheEntries: number;
}

/** Raised when the environment does not satisfy {@link EnvSchema}. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Validates the environment once and returns a typed {@link Config}. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = source[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const withDefaults = Value.Default(EnvSchema, raw);
  const converted = Value.Convert(EnvSchema, withDefaults);
  if (!Value.Check(EnvSchema, converted)) {
    const problems = new Map<string, string>();
    for (const e of Value.Errors(EnvSchema, converted)) {
      problems.set(e.instancePath.slice(1) || '(root)', e.message);
    }
    const text = [...problems].map(([key, message]) => `${key}: ${message}`).join('; ');
    throw new ConfigError(`invalid configuration: ${text}`);
  }
  const env = converted as Env;
  const dataDir = resolve(env.ENGRAM_DATA_DIR);
  return {
    host: env.ENGRAM_HOST,
    port: env.ENGRAM_PORT,
    dataDir,
    store: env.DATABASE_URL
      ? {
          kind: 'postgres',
          url: env.DATABASE_URL,
          poolMax: env.ENGRAM_PG_POOL_MAX,
          connectTimeoutMs: env.ENGRAM_PG_CONNECT_TIMEOUT_MS,
          statementTimeoutMs: env.ENGRAM_PG_STATEMENT_TIMEOUT_MS,
        }
      : {
          kind: 'sqlite',
          file: resolve(dataDir, 'engram.db'),
          cacheKiB: env.ENGRAM_SQLITE_CACHE_KIB,
          walMaxBytes: env.ENGRAM_SQLITE_WAL_MAX_BYTES,
          writerThread: env.ENGRAM_SQLITE_WRITER_THREAD,
        },
    logLevel: env.ENGRAM_LOG_LEVEL,
    bodyLimitBytes: env.ENGRAM_BODY_LIMIT_BYTES,
    requestTimeoutMs: env.ENGRAM_REQUEST_TIMEOUT_MS,
    maxHeaderBytes: env.ENGRAM_MAX_HEADER_BYTES,
    shutdownTimeoutMs: env.ENGRAM_SHUTDOWN_TIMEOUT_MS,
    heapGrowingPercent: env.ENGRAM_HEAP_GROWING_PERCENT,
    deleteGraceMs: env.ENGRAM_DELETE_GRACE_DAYS * 86_400_000,
    idempotencyTtlMs: env.ENGRAM_IDEMPOTENCY_TTL_HOURS * 3_600_000,
    purgeIntervalMs: env.ENGRAM_PURGE_INTERVAL_MS,
    bootstrapKey: env.ENGRAM_BOOTSTRAP_KEY,
    cache: {
      redisUrl: env.REDIS_URL,
      redisTimeoutMs: env.ENGRAM_REDIS_TIMEOUT_MS,
      l1MaxBytes: env.ENGRAM_CACHE_L1_MAX_BYTES,
      l1TrustMs: env.ENGRAM_CACHE_L1_TTL_MS,
      ttlMs: env.ENGRAM_CACHE_TTL_MS,
      graceMs: env.ENGRAM_CACHE_GRACE_MS,
    },
    storeTimeoutMs: env.ENGRAM_STORE_TIMEOUT_MS,
    warm: {
      concurrency: env.ENGRAM_WARM_CONCURRENCY,
      bootUsers: env.ENGRAM_WARM_BOOT_USERS,
      aheadUsers: env.ENGRAM_WARM_AHEAD_USERS,
      intervalMs: env.ENGRAM_WARM_INTERVAL_MS,
    },
    activityFlushMs: env.ENGRAM_ACTIVITY_FLUSH_MS,
    search: {
      halfLifeMs: env.ENGRAM_SEARCH_HALF_LIFE_DAYS * 86_400_000,
      indexMaxMemories: env.ENGRAM_SEARCH_INDEX_MAX_MEMORIES,
      indexMaxBytes: env.ENGRAM_SEARCH_INDEX_MAX_BYTES,
      ftsCandidates: env.ENGRAM_SEARCH_FTS_CANDIDATES,
      accessFlushMs: env.ENGRAM_ACCESS_FLUSH_MS,
    },
    sessions: {
      timeout: {
        defaultMs: env.ENGRAM_SESSION_TIMEOUT_DEFAULT_MS,
        minMs: env.ENGRAM_SESSION_TIMEOUT_MIN_MS,
        maxMs: Math.max(env.ENGRAM_SESSION_TIMEOUT_MAX_MS, env.ENGRAM_SESSION_TIMEOUT_MIN_MS),
        quantile: env.ENGRAM_SESSION_TIMEOUT_QUANTILE,
        margin: env.ENGRAM_SESSION_TIMEOUT_MARGIN,
      },
      sweepMs: env.ENGRAM_SESSION_SWEEP_MS,
      window: env.ENGRAM_SESSION_WINDOW,
      preloadBuildMax: env.ENGRAM_SESSION_PRELOAD_BUILD_MAX,
    },
    embeddings: env.ENGRAM_EMBEDDINGS_URL
      ? {
          url: env.ENGRAM_EMBEDDINGS_URL,
          model: env.ENGRAM_EMBEDDINGS_MODEL,
          apiKey: env.ENGRAM_EMBEDDINGS_API_KEY,
          timeoutMs: env.ENGRAM_EMBEDDINGS_TIMEOUT_MS,
          cacheEntries: env.ENGRAM_EMBEDDINGS_CACHE_ENTRIES,
        }
      : null,
    keyFile: resolve(dataDir, 'api-key'),
  };
}
