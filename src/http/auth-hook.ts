import type { FastifyInstance } from 'fastify';
import type { ApiKeys } from '../auth/api-keys.ts';
import { EngramError } from '../errors.ts';
import './request-tenant.ts';

/**
 * Requires `Authorization: Bearer <key>` on every route of `app` (an encapsulated scope) and
 * sets `request.tenant`. Runs on `onRequest`, before the body is read.
 */
export function requireApiKey(app: FastifyInstance, keys: ApiKeys): void {
  app.decorateRequest('tenant', undefined);
  app.addHook('onRequest', async (request) => {
    const header = request.headers.authorization;
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    const tenant = match?.[1] ? await keys.authenticate(match[1]) : null;
    if (tenant === null) throw new EngramError('ENGRAM_UNAUTHORIZED');
    request.tenant = tenant;
  });
}
