import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ServiceContext } from '../../context.ts';
import { EngramError } from '../../errors.ts';
import { ErrorResponse } from '../schemas/common-schemas.ts';

const tags = ['health'];
const Status = Type.Object({ status: Type.String(), store: Type.Optional(Type.String()) });

/** Time the readiness probe waits for the store. */
const READY_TIMEOUT_MS = 2_000;

/** Liveness and readiness probes (no API key needed). */
export function healthRoutes(ctx: ServiceContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/livez',
      { schema: { tags, summary: 'The process is up', response: { 200: Status } } },
      async () => ({ status: 'ok' }),
    );
    app.get(
      '/readyz',
      {
        schema: {
          tags,
          summary: 'Engram can serve: the store answers',
          response: { 200: Status, 503: ErrorResponse },
        },
      },
      async () => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('store ping timed out')), READY_TIMEOUT_MS);
        });
        try {
          await Promise.race([ctx.store.ping(), timeout]);
        } catch (cause) {
          throw new EngramError('ENGRAM_NOT_READY', {
            message: 'The store does not answer.',
            headers: { 'retry-after': '1' },
            cause,
          });
        } finally {
          clearTimeout(timer);
        }
        return { status: 'ok', store: ctx.store.dialect };
      },
    );
  };
}
