import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Value } from 'typebox/value';
import type { ServiceContext } from '../../context.ts';
import { EngramError, type ErrorDetail } from '../../errors.ts';
import { LIMITS } from '../../memory/memory-rules.ts';
import type { BatchItemReport } from '../../memory/memory-service.ts';
import { toPublicHistory, toPublicMemory } from '../../memory/memory-view.ts';
import { expectedVersion } from '../cursor.ts';
import { toEngramError } from '../error-handler.ts';
import { idempotent } from '../idempotent.ts';
import { tenantOf } from '../request-tenant.ts';
import {
  ErrorResponse,
  errorResponses,
  IfMatchHeaders,
  WriteHeaders,
} from '../schemas/common-schemas.ts';
import {
  Memory,
  MemoryBatch,
  MemoryHistory,
  MemoryParams,
  MemoryPatch,
  NewMemory,
  NewMemoryBatch,
} from '../schemas/memory-schemas.ts';
import { sendCached } from '../send-cached.ts';

const tags = ['memories'];

/**
 * The full per-item report of a rejected batch: schema problems of the items that fail the
 * schema and rule problems of the others, so that one answer lists every bad item.
 */
function batchReports(ctx: ServiceContext, body: unknown): BatchItemReport[] | null {
  const items = (body as { items?: unknown } | null)?.items;
  if (!Array.isArray(items) || items.length === 0 || items.length > LIMITS.batchItems) return null;
  const reports: BatchItemReport[] = [];
  items.forEach((item: unknown, index) => {
    const path = `/body/items/${index}`;
    const errors: ErrorDetail[] = Value.Check(NewMemory, item)
      ? ctx.memories.problemsOf(item, path)
      : Value.Errors(NewMemory, item).map((e) => ({
          path: `${path}${e.instancePath}`,
          message: e.message,
        }));
    if (errors.length > 0) reports.push({ index, errors });
  });
  return reports;
}

/** Routes on single memories and batches: /v1/memories… */
export function memoryRoutes(ctx: ServiceContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      '/v1/memories',
      {
        schema: {
          tags,
          summary: 'Add one memory',
          headers: WriteHeaders,
          body: NewMemory,
          response: { 201: Memory, 422: ErrorResponse, ...errorResponses },
        },
      },
      async (request, reply) => {
        const tenant = tenantOf(request);
        return idempotent(ctx.idempotency, tenant, request, reply, 201, async (idem) =>
          toPublicMemory(await ctx.memories.create(tenant, request.body, idem)),
        );
      },
    );

    app.post(
      '/v1/memories/batch',
      {
        attachValidation: true,
        schema: {
          tags,
          summary: 'Add up to 1,000 memories in one transaction (all or nothing)',
          headers: WriteHeaders,
          body: NewMemoryBatch,
          response: { 201: MemoryBatch, 422: ErrorResponse, ...errorResponses },
        },
      },
      async (request, reply) => {
        const tenant = tenantOf(request);
        if (request.validationError) {
          const reports = batchReports(ctx, request.body);
          if (!reports || reports.length === 0) throw toEngramError(request.validationError);
          throw new EngramError('ENGRAM_BATCH_REJECTED', { extra: { items: reports } });
        }
        return idempotent(ctx.idempotency, tenant, request, reply, 201, async (idem) => ({
          items: (await ctx.memories.createBatch(tenant, request.body.items, idem)).map(
            toPublicMemory,
          ),
        }));
      },
    );

    app.get(
      '/v1/memories/:id',
      {
        schema: {
          tags,
          summary: 'Get one memory',
          params: MemoryParams,
          response: { 200: Memory, ...errorResponses },
        },
      },
      (request, reply) => {
        const tenant = tenantOf(request);
        const warm = ctx.reads.peekGet(tenant, request.params.id);
        if (warm) {
          sendCached(request, reply, warm);
          return;
        }
        return ctx.reads.get(tenant, request.params.id).then((served) => {
          sendCached(request, reply, served);
        });
      },
    );

    app.patch(
      '/v1/memories/:id',
      {
        schema: {
          tags,
          summary: 'Change a memory (If-Match: version for optimistic concurrency)',
          headers: IfMatchHeaders,
          params: MemoryParams,
          body: MemoryPatch,
          response: { 200: Memory, 412: ErrorResponse, 422: ErrorResponse, ...errorResponses },
        },
      },
      async (request, reply) => {
        const tenant = tenantOf(request);
        const version = expectedVersion(request.headers['if-match']);
        return idempotent(ctx.idempotency, tenant, request, reply, 200, async (idem) =>
          toPublicMemory(
            await ctx.memories.update(tenant, request.params.id, request.body, version, idem),
          ),
        );
      },
    );

    app.delete(
      '/v1/memories/:id',
      {
        schema: {
          tags,
          summary: 'Delete a memory (restorable during the grace period)',
          headers: IfMatchHeaders,
          params: MemoryParams,
          response: { 200: Memory, 412: ErrorResponse, 422: ErrorResponse, ...errorResponses },
        },
      },
      async (request, reply) => {
        const tenant = tenantOf(request);
        const version = expectedVersion(request.headers['if-match']);
        return idempotent(ctx.idempotency, tenant, request, reply, 200, async (idem) =>
          toPublicMemory(await ctx.memories.delete(tenant, request.params.id, version, idem)),
        );
      },
    );

    app.post(
      '/v1/memories/:id/restore',
      {
        schema: {
          tags,
          summary: 'Restore a deleted memory',
          headers: WriteHeaders,
          params: MemoryParams,
          response: {
            200: Memory,
            409: ErrorResponse,
            410: ErrorResponse,
            422: ErrorResponse,
            ...errorResponses,
          },
        },
      },
      async (request, reply) => {
        const tenant = tenantOf(request);
        return idempotent(ctx.idempotency, tenant, request, reply, 200, async (idem) =>
          toPublicMemory(await ctx.memories.restore(tenant, request.params.id, idem)),
        );
      },
    );

    app.get(
      '/v1/memories/:id/history',
      {
        schema: {
          tags,
          summary: 'Every change of a memory, oldest first',
          params: MemoryParams,
          response: { 200: MemoryHistory, ...errorResponses },
        },
      },
      async (request) => ({
        items: (await ctx.memories.history(tenantOf(request), request.params.id)).map(
          toPublicHistory,
        ),
      }),
    );
  };
}
