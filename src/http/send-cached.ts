import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Served } from '../cache/cache-stack.ts';

const STALE_PREFIX = Buffer.from('{"stale":true,');

/** Whether an If-None-Match header names this ETag (or `*`). */
function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  if (ifNoneMatch.trim() === '*') return true;
  return ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/**
 * Sends a cached, pre-serialized JSON answer: ETag and `Cache-Control: private, no-cache`
 * (clients may keep it and revalidate), 304 when If-None-Match matches, and when served stale
 * (the store failed) an `Engram-Stale: true` header and a `"stale": true` field.
 */
export function sendCached(
  request: FastifyRequest,
  reply: FastifyReply,
  served: Served,
): FastifyReply {
  const { entry, source } = served;
  reply
    .header('etag', entry.etag)
    .header('cache-control', 'private, no-cache')
    .header('engram-cache', source);
  if (source === 'stale') reply.header('engram-stale', 'true');
  if (matches(request.headers['if-none-match'], entry.etag)) return reply.code(304).send();
  const body =
    source === 'stale' ? Buffer.concat([STALE_PREFIX, entry.body.subarray(1)]) : entry.body;
  return reply.type('application/json; charset=utf-8').send(body);
}
