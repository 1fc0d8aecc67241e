import type { Logger } from 'pino';
import { ApiKeys } from './auth/api-keys.ts';
import { userScope } from './cache/cache-keys.ts';
import { type Cache, createCache } from './cache/create-cache.ts';
import type { Config } from './config.ts';
import { CachedReads } from './http/cached-reads.ts';
import { PurgeJob } from './jobs/purge-job.ts';
import { Idempotency } from './memory/idempotency.ts';
import { MemoryService } from './memory/memory-service.ts';
import { guardStore } from './resilience/store-guard.ts';
import { openStore } from './store/open-store.ts';
import type { Store } from './store/store.ts';
import { type Clock, systemClock } from './util/clock.ts';

/** Every service of one Engram instance, wired once. */
export interface ServiceContext {
  config: Config;
  logger: Logger;
  clock: Clock;
  /** The store behind its circuit breaker and read timeout. */
  store: Store;
  cache: Cache;
  keys: ApiKeys;
  idempotency: Idempotency;
  memories: MemoryService;
  /** Cached, pre-serialized answers of the read routes. */
  reads: CachedReads;
  purge: PurgeJob;
  /** Stops background work and closes the store. */
  close(): Promise<void>;
}

/** Wires the services with plain constructors; migrates the store. */
export async function createContext(
  config: Config,
  logger: Logger,
  overrides: { clock?: Clock; store?: Store } = {},
): Promise<ServiceContext> {
  const clock = overrides.clock ?? systemClock;
  const rawStore = overrides.store ?? openStore(config.store, logger);
  try {
    await rawStore.migrate();
  } catch (err) {
    await rawStore.close();
    throw err;
  }
  const store = guardStore(rawStore, { readTimeoutMs: config.storeTimeoutMs });
  const cache = createCache(config.cache, clock, logger);
  if (cache.distributed && !(await cache.ready(2_000))) {
    logger.warn('Redis is not reachable at start; serving from L1 and the store until it is');
  }
  const idempotency = new Idempotency(store, clock, config.idempotencyTtlMs);
  const purge = new PurgeJob(store, clock, logger, {
    deleteGraceMs: config.deleteGraceMs,
    intervalMs: config.purgeIntervalMs,
  });
  const memories = new MemoryService(store, clock, idempotency, {
    deleteGraceMs: config.deleteGraceMs,
    onWrite: async (tenant, userIds) => {
      try {
        await cache.stack.invalidate([...userIds].map((u) => userScope(tenant, u)));
      } catch (err) {
        logger.error({ err }, 'cache invalidation failed');
      }
    },
  });
  return {
    config,
    logger,
    clock,
    store,
    cache,
    keys: new ApiKeys(store, clock),
    idempotency,
    memories,
    reads: new CachedReads(memories, cache.stack),
    purge,
    async close() {
      await purge.stop();
      await cache.close();
      await rawStore.close();
    },
  };
}
