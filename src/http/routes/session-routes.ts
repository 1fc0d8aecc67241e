import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ServiceContext } from '../../context.ts';
import type { IdempotencyRequest } from '../../memory/idempotency.ts';
import { toPublicMemory } from '../../memory/memory-view.ts';
import { CHARS_PER_TOKEN } from '../../sessions/preload.ts';
import { toPublicSession } from '../../sessions/session-view.ts';
import { decodeCursor, encodeCursor } from '../cursor.ts';
import { idempotent } from '../idempotent.ts';
import { tenantOf } from '../request-tenant.ts';
import { ErrorResponse, errorResponses, WriteHeaders } from '../schemas/common-schemas.ts';
import { MemoryBatch, UserParams } from '../schemas/memory-schemas.ts';
import {
  DEFAULT_BUDGET_CHARS,
  EndedSession,
  NewMessages,
  NewSession,
  OneSession,
  SessionListQuery,
  SessionPage,
  SessionParams,
  SessionWithWindow,
  StartedSession,
} from '../schemas/session-schemas.ts';
import { appTiming } from '../server-timing.ts';

const tags = ['sessions'];

/** Routes of sessions: /v1/sessions… and /v1/users/{userId}/sessions. */
export function sessionRoutes(ctx: ServiceContext): FastifyPluginAsyncTypebox {
  // Writes whose answer is not recorded in the write's own transaction record it right after
  // (a crash between the two makes a retry run again, as without a key).
  const remember = async (
    tenant: string,
    idem: IdempotencyRequest | undefined,
    userId: string,
    status: number,
    body: unknown,
  ): Promise<void> => {
    if (idem)
      await ctx.store.putIdempotency(ctx.idempotency.record(tenant, idem, userId, status, body));
  };

  return async (app) => {
    app.post(
      '/v1/sessions',
      {
        schema: {
          tags,
          summary: 'Start a session; answers its preload bundle',
          headers: WriteHeaders,
          body: NewSession,
          response: { 201: StartedSession, 422: ErrorResponse, ...errorResponses },
        },
        onSend: appTiming,
      },
      async (request, reply) => {
        const tenant = tenantOf(request);
        const b = request.body;
        const budgetChars =
          b.budget?.chars ??
          (b.budget?.tokens === undefined
            ? DEFAULT_BUDGET_CHARS
            : b.budget.tokens * CHARS_PER_TOKEN);
        return idempotent(ctx.idempotency, tenant, request, reply, 201, async (idem) => {
          const { session, preload } = await ctx.sessions.start(tenant, {
            userId: b.userId,
            agentId: b.agentId,
            context: b.context,
            budgetChars,
          });
          // The bundle's own time (the start also reads and writes the session).
          reply.header(
            'server-timing',
            `preload;dur=${preload.ms.toFixed(3)};desc="${preload.source}"`,
          );
          const { ms: _ms, ...bundle } = preload;
          const body = {
            session: toPublicSession(session),
            preload: {
              ...bundle,
              items: bundle.items.map((i) => ({
                memory: toPublicMemory(i.row),
                reasons: i.reasons,
              })),
            },
          };
          await remember(tenant, idem, b.userId, 201, body);
          // Serialized here, as search's answer: the schema's per-field format checks of ~25
          // memories would cost more than building the bundle.
          return reply
            .code(201)
            .type('application/json; charset=utf-8')
            .send(JSON.stringify(body) as never);
        });
      },
    );

    app.post(
      '/v1/sessions/:id/messages',
      {
        schema: {
          tags,
          summary: "Append messages to a session's working memory (each stored before the 2xx)",
          headers: WriteHeaders,
          params: SessionParams,
          body: NewMessages,
          response: { 201: MemoryBatch, 409: ErrorResponse, 422: ErrorResponse, ...errorResponses },
        },
      },
      async (request, reply) => {
        const tenant = tenantOf(request);
        return idempotent(ctx.idempotency, tenant, request, reply, 201, async (idem) => ({
          items: (
            await ctx.sessions.append(tenant, request.params.id, request.body.messages, idem)
          ).map(toPublicMemory),
        }));
      },
    );

    app.get(
      '/v1/sessions/:id',
      {
        schema: {
          tags,
          summary: 'A session: state, recent messages, expiry and the timeout in force',
          params: SessionParams,
          response: { 200: SessionWithWindow, ...errorResponses },
        },
      },
      async (request) => {
        const view = await ctx.sessions.get(tenantOf(request), request.params.id);
        return {
          session: toPublicSession(view.session),
          window: view.window.map((m) => ({ ...m, at: new Date(m.at).toISOString() })),
          source: view.source,
        };
      },
    );

    app.post(
      '/v1/sessions/:id/touch',
      {
        schema: {
          tags,
          summary: 'Mark the user as present: the idle timeout starts again',
          headers: WriteHeaders,
          params: SessionParams,
          response: { 200: OneSession, 409: ErrorResponse, 422: ErrorResponse, ...errorResponses },
        },
      },
      async (request, reply) => {
        const tenant = tenantOf(request);
        return idempotent(ctx.idempotency, tenant, request, reply, 200, async (idem) => {
          const session = await ctx.sessions.touch(tenant, request.params.id);
          const body = { session: toPublicSession(session) };
          await remember(tenant, idem, session.userId, 200, body);
          return body;
        });
      },
    );

    app.post(
      '/v1/sessions/:id/end',
      {
        schema: {
          tags,
          summary: 'End a session: its messages stay as memories and a summary memory is written',
          headers: WriteHeaders,
          params: SessionParams,
          response: {
            200: EndedSession,
            409: ErrorResponse,
            422: ErrorResponse,
            ...errorResponses,
          },
        },
      },
      async (request, reply) => {
        const tenant = tenantOf(request);
        return idempotent(ctx.idempotency, tenant, request, reply, 200, async (idem) => {
          const { session, summary } = await ctx.sessions.end(tenant, request.params.id);
          const body = {
            session: toPublicSession(session),
            summary: summary ? toPublicMemory(summary) : null,
          };
          await remember(tenant, idem, session.userId, 200, body);
          return body;
        });
      },
    );

    app.get(
      '/v1/users/:userId/sessions',
      {
        schema: {
          tags,
          summary: "A user's sessions, newest first",
          params: UserParams,
          querystring: SessionListQuery,
          response: { 200: SessionPage, ...errorResponses },
        },
      },
      async (request) => {
        const q = request.query;
        const before = q.cursor === undefined ? null : decodeCursor(q.cursor);
        const rows = await ctx.sessions.list(
          tenantOf(request),
          request.params.userId,
          before,
          q.limit + 1,
        );
        const more = rows.length > q.limit;
        if (more) rows.length = q.limit;
        return {
          items: rows.map(toPublicSession),
          nextCursor: more ? encodeCursor((rows[rows.length - 1] as { id: string }).id) : null,
        };
      },
    );
  };
}
