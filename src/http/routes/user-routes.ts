import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ServiceContext } from '../../context.ts';
import { toPublicMemory } from '../../memory/memory-view.ts';
import { decodeCursor } from '../cursor.ts';
import { idempotent } from '../idempotent.ts';
import { toFilter } from '../list-filter.ts';
import { tenantOf } from '../request-tenant.ts';
import { ErrorResponse, errorResponses, WriteHeaders } from '../schemas/common-schemas.ts';
import { EraseResult, ListQuery, MemoryPage, UserParams } from '../schemas/memory-schemas.ts';
import { sendCached } from '../send-cached.ts';

const tags = ['users'];

/** Routes on all memories of one user: /v1/users/{userId}… */
export function userRoutes(ctx: ServiceContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/v1/users/:userId/memories',
      {
        schema: {
          tags,
          summary: "List a user's memories, newest first, with filters and a cursor",
          params: UserParams,
          querystring: ListQuery,
          response: { 200: MemoryPage, ...errorResponses },
        },
      },
      (request, reply) => {
        const q = request.query;
        const tenant = tenantOf(request);
        const filter = {
          userId: request.params.userId,
          limit: q.limit,
          beforeId: q.cursor === undefined ? undefined : decodeCursor(q.cursor),
          ...toFilter(q, q.tag),
        };
        // A warm answer is sent without a promise; otherwise the full cache path runs.
        const warm = ctx.reads.peekList(tenant, filter);
        if (warm) {
          sendCached(request, reply, warm);
          return;
        }
        return ctx.reads.list(tenant, filter).then((served) => {
          sendCached(request, reply, served);
        });
      },
    );

    app.get(
      '/v1/users/:userId/export',
      {
        schema: {
          tags,
          summary: 'Export every memory of a user as NDJSON (one memory per line, oldest first)',
          params: UserParams,
          produces: ['application/x-ndjson'],
          response: {
            200: {
              description: 'NDJSON stream',
              content: { 'application/x-ndjson': { schema: { type: 'string' } } },
            },
            ...errorResponses,
          },
        },
      },
      async (request, reply) => {
        const chunks = ctx.memories.exportUser(tenantOf(request), request.params.userId);
        // The first chunk is read before answering so that a failing store still gets a 503.
        const first = await chunks.next();
        async function* lines(): AsyncGenerator<string> {
          if (first.done) return;
          yield first.value.map((row) => `${JSON.stringify(toPublicMemory(row))}\n`).join('');
          for await (const chunk of chunks) {
            yield chunk.map((row) => `${JSON.stringify(toPublicMemory(row))}\n`).join('');
          }
        }
        return reply
          .type('application/x-ndjson; charset=utf-8')
          .header('content-disposition', `attachment; filename="${request.params.userId}.ndjson"`)
          .send(Readable.from(lines()) as never);
      },
    );

    app.delete(
      '/v1/users/:userId',
      {
        schema: {
          tags,
          summary:
            'Erase a user: every memory with its history, their sessions, activity and timeout model, and remembered responses',
          headers: WriteHeaders,
          params: UserParams,
          response: { 200: EraseResult, 422: ErrorResponse, ...errorResponses },
        },
      },
      async (request, reply) => {
        const tenant = tenantOf(request);
        const userId = request.params.userId;
        return idempotent(ctx.idempotency, tenant, request, reply, 200, async (idem) => {
          // Sessions' ids are read before the store forgets them; their hot copies go after.
          const forgetSessions = await ctx.sessions.beginErase(tenant, userId);
          const result = { userId, deleted: await ctx.memories.eraseUser(tenant, userId) };
          await forgetSessions();
          // Recorded after the erasure, which would otherwise delete it with the user's data.
          if (idem)
            await ctx.store.putIdempotency(
              ctx.idempotency.record(tenant, idem, userId, 200, result),
            );
          return result;
        });
      },
    );
  };
}
