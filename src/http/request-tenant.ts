import type { FastifyRequest } from 'fastify';
import { EngramError } from '../errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The tenant of the authenticated API key; set by the auth hook on /v1 routes. */
    tenant: string | undefined;
  }
}

/** The authenticated tenant of a /v1 request. */
export function tenantOf(request: FastifyRequest): string {
  if (request.tenant === undefined) throw new EngramError('ENGRAM_UNAUTHORIZED');
  return request.tenant;
}
