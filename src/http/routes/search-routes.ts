import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ServiceContext } from '../../context.ts';
import { toPublicMemory } from '../../memory/memory-view.ts';
import { toFilter } from '../list-filter.ts';
import { tenantOf } from '../request-tenant.ts';
import { errorResponses } from '../schemas/common-schemas.ts';
import { UserParams } from '../schemas/memory-schemas.ts';
import { SearchBody, SearchResponse } from '../schemas/search-schemas.ts';
import { appTiming } from '../server-timing.ts';

/** Search route: POST /v1/users/{userId}/memories/search. */
export function searchRoutes(ctx: ServiceContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      '/v1/users/:userId/memories/search',
      {
        schema: {
          tags: ['search'],
          summary:
            "Rank a user's memories for a query: text relevance (BM25), recency, importance, pinned, use, optionally vector similarity",
          params: UserParams,
          body: SearchBody,
          response: { 200: SearchResponse, ...errorResponses },
        },
        // Server time (arrival to serialized answer): clients and the benchmark read it.
        onSend: appTiming,
      },
      async (request, reply) => {
        const b = request.body;
        const result = await ctx.search.search(tenantOf(request), request.params.userId, {
          query: b.query,
          k: b.k,
          filter: toFilter(b, b.tags),
          weights: b.weights,
          fusion: b.fusion,
          explain: b.explain,
        });
        // Serialized here: every field is built by toPublicMemory and the ranker, so the
        // response schema's per-field checks (date-time formats) would only repeat them, at
        // a fifth of this route's time. The schema still documents the answer.
        // The fields named one by one (SearchResponse's), not a rest and a spread of the
        // result: Node 20's V8 takes a slow path for those (microseconds per search).
        const body = JSON.stringify({
          items: result.items.map((item) => ({
            memory: toPublicMemory(item.row),
            score: item.score,
            ...(item.explain ? { explain: item.explain } : {}),
          })),
          terms: result.terms,
          fusion: result.fusion,
          weights: result.weights,
          source: result.source,
          vector: result.vector,
        });
        // Whether the user's index was already held (`hit`): a warm session's first search is.
        reply.header('server-timing', `index;desc="${result.index}"`);
        return reply.type('application/json; charset=utf-8').send(body as never);
      },
    );
  };
}
