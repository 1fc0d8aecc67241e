import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiKeys } from '../auth/api-keys.ts';
import type { Served } from '../cache/cache-stack.ts';
import type { CacheCounters } from '../cache/cache-stats.ts';
import { MEMORY_ID_PATTERN } from '../memory/ids.ts';
import { LIMITS } from '../memory/memory-rules.ts';
import type { CachedReads } from './cached-reads.ts';
import { EXTERNAL_ID_PATTERN } from './schemas/common-schemas.ts';

/** A handler that answers a request itself (true) or leaves it to Fastify (false). */
export type FastPath = (req: IncomingMessage, res: ServerResponse) => boolean;

const BEARER = /^Bearer\s+(\S+)\s*$/i;
const LIST = /^\/v1\/users\/([^/?%]+)\/memories(?:\?limit=([1-9]\d{0,2}))?$/;
const BY_ID = /^\/v1\/memories\/([^/?%]+)$/;
const USER_ID = new RegExp(EXTERNAL_ID_PATTERN);
const MEMORY_ID = new RegExp(MEMORY_ID_PATTERN);
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * Warm reads straight from node:http, before Fastify: a GET of a user's first page (no
 * parameter but `limit`) or of one memory, with a key verified recently and a fresh L1 answer,
 * is written out at once with the same headers the routes send. Anything else — a miss, any
 * other parameter, a conditional request, an unverified key, percent-encoding, shutdown — goes
 * to Fastify, which validates and answers it fully. This saves the framework's per-request
 * work on the one path that dominates a memory service's traffic.
 */
export function createFastPath(
  keys: ApiKeys,
  reads: CachedReads,
  counters: CacheCounters,
  enabled: () => boolean,
): FastPath {
  return (req, res) => {
    if (req.method !== 'GET' || !enabled() || req.headers['if-none-match'] !== undefined) {
      return false;
    }
    const url = req.url ?? '';
    const auth = req.headers.authorization;
    if (!url.startsWith('/v1/') || auth === undefined) return false;
    const key = BEARER.exec(auth)?.[1];
    const tenant = key === undefined ? undefined : keys.verifiedTenant(key);
    if (tenant === undefined) return false;
    let served: Served | undefined;
    const list = LIST.exec(url);
    if (list) {
      const [, userId = '', limitText] = list;
      const limit = limitText === undefined ? LIMITS.defaultPage : Number(limitText);
      if (!USER_ID.test(userId) || limit > LIMITS.listLimit) return false;
      served = reads.peekList(tenant, {
        userId,
        limit,
        beforeId: undefined,
        kind: undefined,
        tags: undefined,
        agentId: undefined,
        sessionId: undefined,
        pinned: undefined,
        createdFrom: undefined,
        createdTo: undefined,
        updatedFrom: undefined,
        updatedTo: undefined,
      });
    } else {
      const id = BY_ID.exec(url)?.[1];
      if (id === undefined || !MEMORY_ID.test(id)) return false;
      served = reads.peekGet(tenant, id);
    }
    if (!served) return false;
    const given = req.headers['x-request-id'];
    const body = served.entry.body;
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': body.length,
      etag: served.entry.etag,
      'cache-control': 'private, no-cache',
      'engram-cache': 'l1',
      'x-request-id': typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID(),
    });
    res.end(body);
    counters.fastPath++;
    return true;
  };
}
