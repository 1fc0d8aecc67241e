import type { FastifyInstance } from 'fastify';
import type { ApiKeys } from '../auth/api-keys.ts';
import { EngramError } from '../errors.ts';
import './request-tenant.ts';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * Requires `Authorization: Bearer <key>` on every route of `app` (an encapsulated scope) and
 * sets `request.tenant`. Runs on `onRequest`, before the body is read.
 */
export function requireApiKey(app: FastifyInstance, keys: ApiKeys): void {
  app.decorateRequest('tenant', undefined);
  // Callback style: a key verified recently is answered without a promise (hot path).
  app.addHook('onRequest', (request, _reply, done) => {
    const header = request.headers.authorization;
    const match = header === undefined ? null : BEARER.exec(header);
    const key = match?.[1];
    if (!key) {
      done(new EngramError('ENGRAM_UNAUTHORIZED'));
      return;
    }
    const known = keys.verifiedTenant(key);
    if (known !== undefined) {
      request.tenant = known;
      done();
      return;
    }
    keys.authenticate(key).then((tenant) => {
      if (tenant === null) {
        done(new EngramError('ENGRAM_UNAUTHORIZED'));
        return;
      }
      request.tenant = tenant;
      done();
    }, done);
  });
}
