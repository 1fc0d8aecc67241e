import type { ActivityTracker } from '../activity/activity-tracker.ts';
import { memoryKey, queryKey, userScope } from '../cache/cache-keys.ts';
import type { CacheStack, Served } from '../cache/cache-stack.ts';
import { SingleFlight } from '../cache/single-flight.ts';
import type { Warmer } from '../cache/warmer.ts';
import { LIMITS } from '../memory/memory-rules.ts';
import type { MemoryService } from '../memory/memory-service.ts';
import type { ListFilter, MemoryRow } from '../memory/memory-types.ts';
import { toPublicMemory } from '../memory/memory-view.ts';
import { entryLru } from '../util/entry-lru.ts';
import { encodeCursor } from './cursor.ts';

/** The earliest expiry among rows, or 0: a cached answer holding them is void after it. */
function validUntil(rows: MemoryRow[]): number {
  let min = 0;
  for (const r of rows) {
    if (r.expiresAt !== null && (min === 0 || r.expiresAt < min)) min = r.expiresAt;
  }
  return min;
}

type ListQuery = Omit<ListFilter, 'now'>;

/** The cache key of a listing: every filter in a fixed order (no sorting on the hot path). */
function listKey(tenant: string, q: ListQuery): string {
  return queryKey('list', tenant, q.userId, [
    q.limit,
    q.beforeId,
    q.kind,
    q.tags,
    q.agentId,
    q.sessionId,
    q.pinned,
    q.createdFrom,
    q.createdTo,
    q.updatedFrom,
    q.updatedTo,
  ]);
}

/** Distinct list queries remembered per user for refreshing after writes. */
const QUERIES_PER_USER = 4;

/**
 * The cached read paths of the API: each answer is kept serialized, under the version of the
 * user it belongs to, so a warm read is a lookup and a buffer write. After a write, the user's
 * recently filled queries are loaded again in the background (refresh-ahead), so the next read
 * after a write is a hit too.
 */
export class CachedReads {
  readonly #memories: MemoryService;
  readonly #cache: CacheStack;
  readonly #warmer: Warmer;
  readonly #activity: ActivityTracker;
  // A memory never changes user: once seen, its by-id answer can be versioned by that user.
  readonly #owner = entryLru<string, string>(1_000_000);
  // Concurrent first reads of one memory share one owner lookup (else N reads cost N + 1).
  readonly #ownerLookups = new SingleFlight<string>();
  readonly #recentQueries = entryLru<string, ListQuery[]>(200_000);

  constructor(
    memories: MemoryService,
    cache: CacheStack,
    warmer: Warmer,
    activity: ActivityTracker,
  ) {
    this.#memories = memories;
    this.#cache = cache;
    this.#warmer = warmer;
    this.#activity = activity;
  }

  #remember(tenant: string, query: ListQuery): void {
    const scope = userScope(tenant, query.userId);
    const known = this.#recentQueries.get(scope) ?? [];
    const key = listKey(tenant, query);
    if (known.some((q) => listKey(tenant, q) === key)) return;
    this.#recentQueries.set(scope, [query, ...known].slice(0, QUERIES_PER_USER));
  }

  /** Loads a user's recently used queries (or the default page) into the cache. */
  async refresh(tenant: string, userId: string): Promise<void> {
    const queries = this.#recentQueries.get(userScope(tenant, userId)) ?? [
      { userId, limit: LIMITS.defaultPage },
    ];
    for (const query of queries) await this.list(tenant, query, false);
  }

  /** Queues a background {@link refresh} of a user; false when the warming queue is full. */
  warmUser(tenant: string, userId: string): boolean {
    return this.#warmer.enqueue(userScope(tenant, userId), () => this.refresh(tenant, userId));
  }

  /**
   * After a committed write: the queries recently read of these users are refreshed in the
   * background. Users nobody reads (imports, batch writes) cost no refresh.
   */
  afterWrite(tenant: string, userIds: Iterable<string>): void {
    for (const userId of userIds) {
      this.#activity.touch(tenant, userId);
      if (this.#recentQueries.has(userScope(tenant, userId))) this.warmUser(tenant, userId);
    }
  }

  /** A warm answer of {@link get} without waiting, or undefined. */
  peekGet(tenant: string, id: string): Served | undefined {
    const key = memoryKey(tenant, id);
    const owner = this.#owner.get(key);
    if (owner === undefined) return undefined;
    const served = this.#cache.peek({ scope: userScope(tenant, owner), key });
    if (served) this.#activity.touch(tenant, owner);
    return served;
  }

  /** A warm answer of {@link list} without waiting, or undefined. */
  peekList(tenant: string, filter: ListQuery): Served | undefined {
    const served = this.#cache.peek({
      scope: userScope(tenant, filter.userId),
      key: listKey(tenant, filter),
    });
    if (served) this.#activity.touch(tenant, filter.userId);
    return served;
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
    if (owner !== undefined) {
      this.#activity.touch(tenant, owner);
      return this.#cache.get({ scope: userScope(tenant, owner), key }, load);
    }
    // The owner must be known before the load to read its version first; learn it once.
    const learned = await this.#ownerLookups.run(key, async () => {
      const row = await this.#memories.get(tenant, id);
      this.#owner.set(key, row.userId);
      return row.userId;
    }).promise;
    this.#activity.touch(tenant, learned);
    return this.#cache.get({ scope: userScope(tenant, learned), key }, load);
  }

  /** A page of a user's memories as the JSON body of GET /v1/users/{userId}/memories. */
  async list(tenant: string, filter: ListQuery, byClient = true): Promise<Served> {
    if (byClient) this.#activity.touch(tenant, filter.userId);
    const served = await this.#cache.get(
      {
        scope: userScope(tenant, filter.userId),
        key: listKey(tenant, filter),
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
    if (served.source === 'store' && byClient) this.#remember(tenant, filter);
    return served;
  }
}
