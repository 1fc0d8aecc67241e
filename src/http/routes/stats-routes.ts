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
    updates: Counter,
    drops: Counter,
    replayed: Counter,
    refused: Counter,
    transient: Counter,
    pendingAccesses: Counter,
    embedFailures: Counter,
  }),
});

/**
 * GET /v1/stats/cache: this instance's cache and search-index counters (the metrics issue
 * exports them too).
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
  };
}
