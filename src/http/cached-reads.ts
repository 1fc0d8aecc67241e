import { LRUCache } from 'lru-cache';
import { memoryKey, queryKey, userScope } from '../cache/cache-keys.ts';
import type { CacheStack, Served } from '../cache/cache-stack.ts';
import type { MemoryService } from '../memory/memory-service.ts';
import type { ListFilter, MemoryRow } from '../memory/memory-types.ts';
import { toPublicMemory } from '../memory/memory-view.ts';
import { encodeCursor } from './cursor.ts';

/** The earliest expiry among rows, or 0: a cached answer holding them is void after it. */
function validUntil(rows: MemoryRow[]): number {
  let min = 0;
  for (const r of rows) {
    if (r.expiresAt !== null && (min === 0 || r.expiresAt < min)) min = r.expiresAt;
  }
  return min;
}

/**
 * The cached read paths of the API: each answer is kept serialized, under the version of the
 * user it belongs to, so a warm read is a lookup and a buffer write.
 */
export class CachedReads {
  readonly #memories: MemoryService;
  readonly #cache: CacheStack;
  // A memory never changes user: once seen, its by-id answer can be versioned by that user.
  readonly #owner = new LRUCache<string, string>({ max: 1_000_000 });

  constructor(memories: MemoryService, cache: CacheStack) {
    this.#memories = memories;
    this.#cache = cache;
  }

  /** One memory as the JSON body of GET /v1/memories/{id}. */
  async get(tenant: string, id: string): Promise<Served> {
    const key = memoryKey(tenant, id);
    const owner = this.#owner.get(key);
    const load = async () => {
      const row = await this.#memories.get(tenant, id);
      return {
        body: Buffer.from(JSON.stringify(toPublicMemory(row))),
        validUntil: validUntil([row]),
      };
    };
    if (owner !== undefined) return this.#cache.get({ scope: userScope(tenant, owner), key }, load);
    // The owner must be known before the load to read its version first; learn it once.
    const row = await this.#memories.get(tenant, id);
    this.#owner.set(key, row.userId);
    return this.#cache.get({ scope: userScope(tenant, row.userId), key }, load);
  }

  /** A page of a user's memories as the JSON body of GET /v1/users/{userId}/memories. */
  list(tenant: string, filter: Omit<ListFilter, 'now'>): Promise<Served> {
    return this.#cache.get(
      {
        scope: userScope(tenant, filter.userId),
        key: queryKey('list', tenant, filter.userId, filter),
      },
      async () => {
        const page = await this.#memories.list(tenant, filter);
        const body = {
          items: page.rows.map(toPublicMemory),
          nextCursor: page.nextBeforeId === null ? null : encodeCursor(page.nextBeforeId),
        };
        return { body: Buffer.from(JSON.stringify(body)), validUntil: validUntil(page.rows) };
      },
    );
  }
}
