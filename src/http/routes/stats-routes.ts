import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ServiceContext } from '../../context.ts';
import { errorResponses } from '../schemas/common-schemas.ts';

const Counter = Type.Integer({ minimum: 0 });

/** Instance-wide cache counters (no tenant data): hits and misses per tier, fills, … */
const CacheStats = Type.Object({
  distributed: Type.Boolean(),
  counters: Type.Object({
    l1Hits: Counter,
    l1Misses: Counter,
    l2Hits: Counter,
    l2Misses: Counter,
    l2Errors: Counter,
    fills: Counter,
    fillsJoined: Counter,
    staleServes: Counter,
    l1Evictions: Counter,
    l1Bytes: Counter,
    invalidations: Counter,
    busReceived: Counter,
    busReconnectClears: Counter,
    warmed: Counter,
    fastPath: Counter,
  }),
  warmQueue: Counter,
  /** The per-user search indexes of this instance. */
  search: Type.Object({
    indexes: Counter,
    bytes: Counter,
    largeUsers: Counter,
    hits: Counter,
    builds: Counter,
    startBuilds: Counter,
    warmBuilds: Counter,
    updates: Counter,
    drops: Counter,
    replayed: Counter,
    refused: Counter,
    transient: Counter,
    pendingAccesses: Counter,
    embedFailures: Counter,
  }),
});

/** The process's memory in bytes, as `process.memoryUsage()` reads it. */
const MemoryStats = Type.Object({
  /** Resident set size: what the operating system counts against the process. */
  rss: Counter,
  /** V8's heap: reserved, and in use by live and not yet collected objects. */
  heapTotal: Counter,
  heapUsed: Counter,
  /** Memory outside V8's heap held by JavaScript objects (array buffers among it). */
  external: Counter,
  /** Typed arrays and Buffers: the search indexes and the L1 bodies live here. */
  arrayBuffers: Counter,
});

/** The store's own state: the embedded store's log and checkpoints, or the shared one's pool. */
const StoreStats = Type.Union([
  Type.Object({
    dialect: Type.Literal('sqlite'),
    /** The write-ahead log's file, and the size past which writes wait for a checkpoint. */
    walBytes: Counter,
    walMaxBytes: Counter,
    walWaits: Type.Object({ count: Counter, ms: Type.Number({ minimum: 0 }) }),
    /** The log's flushes to disk: how many, their time in all and the longest (ms). */
    walFlushes: Type.Object({
      count: Counter,
      ms: Type.Number({ minimum: 0 }),
      maxMs: Type.Number({ minimum: 0 }),
    }),
    checkpoints: Type.Union([
      Type.Object({
        count: Counter,
        frames: Counter,
        maxMs: Type.Number({ minimum: 0 }),
        failed: Type.Boolean(),
      }),
      Type.Null(),
    ]),
  }),
  Type.Object({
    dialect: Type.Literal('postgres'),
    pool: Type.Object({ total: Counter, idle: Counter, waiting: Counter, max: Counter }),
  }),
]);

/**
 * GET /v1/stats/cache: this instance's cache and search-index counters (the metrics issue
 * exports them too); GET /v1/stats/memory: where its memory is; GET /v1/stats/store: the
 * store's log and checkpoints (SQLite) or pool (PostgreSQL).
 */
export function statsRoutes(ctx: ServiceContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/v1/stats/cache',
      {
        schema: {
          tags: ['stats'],
          summary: "This instance's cache and search-index counters",
          response: { 200: CacheStats, ...errorResponses },
        },
      },
      async () => ({
        distributed: ctx.cache.distributed,
        counters: { ...ctx.cache.stack.counters },
        warmQueue: ctx.warmer.queued,
        search: {
          ...ctx.indexes.stats,
          ...ctx.indexes.counters,
          pendingAccesses: ctx.access.pending,
          embedFailures: ctx.search.embedFailures,
        },
      }),
    );
    app.get(
      '/v1/stats/memory',
      {
        schema: {
          tags: ['stats'],
          summary: "This instance's memory: resident, V8 heap, array buffers",
          response: { 200: MemoryStats, ...errorResponses },
        },
      },
      async () => {
        const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
        return { rss, heapTotal, heapUsed, external, arrayBuffers };
      },
    );
    app.get(
      '/v1/stats/store',
      {
        schema: {
          tags: ['stats'],
          summary: "The store's state: write-ahead log and checkpoints (SQLite), pool (PostgreSQL)",
          response: { 200: StoreStats, ...errorResponses },
        },
      },
      async () => ctx.store.stats(),
    );
  };
}
