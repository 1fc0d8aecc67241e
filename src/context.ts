import type { Logger } from 'pino';
import { ActivityTracker } from './activity/activity-tracker.ts';
import { ApiKeys } from './auth/api-keys.ts';
import { userScope } from './cache/cache-keys.ts';
import { type Cache, createCache } from './cache/create-cache.ts';
import { createRedis } from './cache/redis-client.ts';
import { WarmScheduler } from './cache/warm-scheduler.ts';
import { Warmer } from './cache/warmer.ts';
import type { Config } from './config.ts';
import { CachedReads } from './http/cached-reads.ts';
import { PurgeJob } from './jobs/purge-job.ts';
import { Idempotency } from './memory/idempotency.ts';
import { MemoryService } from './memory/memory-service.ts';
import type { MemoryRow } from './memory/memory-types.ts';
import { guardStore } from './resilience/store-guard.ts';
import { AccessRecorder } from './search/access-recorder.ts';
import { createEmbedder } from './search/create-embedder.ts';
import { IndexCache } from './search/index-cache.ts';
import { SearchService } from './search/search-service.ts';
import { LocalSessionState } from './sessions/local-session-state.ts';
import { Preloader } from './sessions/preload.ts';
import { type HotSessions, SessionHotState } from './sessions/session-hot-state.ts';
import { SessionService } from './sessions/session-service.ts';
import { SessionSweeper } from './sessions/session-sweeper.ts';
import { TimeoutModels } from './sessions/timeout-models.ts';
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
  activity: ActivityTracker;
  warmer: Warmer;
  warming: WarmScheduler;
  search: SearchService;
  /** The per-user search indexes held in process. */
  indexes: IndexCache;
  /** Write-behind of the access statistics of search results. */
  access: AccessRecorder;
  sessions: SessionService;
  /** The session expiry sweeper. */
  sweeper: SessionSweeper;
  /** Users' learned session timeouts (written behind). */
  timeoutModels: TimeoutModels;
  /** Starts background work: purge, activity write-behind, warming. */
  start(): void;
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
  const activity = new ActivityTracker(store, clock, logger, config.activityFlushMs);
  const warmer = new Warmer(config.warm.concurrency, 10_000, cache.stack.counters, (err) =>
    logger.debug({ err }, 'warming load failed'),
  );
  const embedder = createEmbedder(config.embeddings);
  const indexes = new IndexCache(config.search.indexMaxBytes);
  const access = new AccessRecorder(store, logger, config.search.accessFlushMs);
  const search = new SearchService({
    store,
    cache: cache.stack,
    indexes,
    access,
    activity,
    embedder,
    clock,
    options: config.search,
  });
  let reads: CachedReads | undefined;
  /** After every committed write of memories: caches, indexes and warming follow it. */
  const afterWrite = async (
    tenant: string,
    userIds: Iterable<string>,
    rows: MemoryRow[],
    erased = false,
  ) => {
    const byScope = new Map([...userIds].map((u) => [userScope(tenant, u), u]));
    // Grouped once: a batch may span many users, each followed on its own.
    const rowsOf = new Map<string, MemoryRow[]>();
    for (const row of rows) {
      const list = rowsOf.get(row.userId);
      if (list) list.push(row);
      else rowsOf.set(row.userId, [row]);
    }
    const followed = new Set<string>();
    try {
      await cache.stack.invalidate(byScope.keys(), (scope, bump) => {
        followed.add(scope);
        const user = byScope.get(scope) as string;
        search.afterWrite(tenant, user, rowsOf.get(user) ?? [], bump);
      });
    } catch (err) {
      logger.error({ err }, 'cache invalidation failed');
    }
    // Without a bump, held search indexes of these users are dropped (rebuilt on use).
    for (const [scope, user] of byScope) {
      if (!followed.has(scope)) search.afterWrite(tenant, user, rowsOf.get(user) ?? [], undefined);
    }
    // An erasure is no activity of the user (it would be written back after it), and their
    // reads have nothing left to refresh.
    if (!erased) reads?.afterWrite(tenant, [...byScope.values()]);
    else for (const user of byScope.values()) search.forget(tenant, user);
  };
  const memories = new MemoryService(store, clock, idempotency, {
    deleteGraceMs: config.deleteGraceMs,
    embedder,
    onEmbedError: (err) => logger.warn({ err }, 'embedding failed; memory stored without a vector'),
    onWrite: afterWrite,
  });
  reads = new CachedReads(memories, cache.stack, warmer, activity);
  // Sessions are kept hot in Redis when there is one (any instance serves any session), else
  // in this process in embedded mode (one instance owns the SQLite file); PostgreSQL without
  // Redis may run several instances, which a copy here would not follow.
  const hot: HotSessions | null = config.cache.redisUrl
    ? new SessionHotState(
        createRedis(
          {
            url: config.cache.redisUrl,
            commandTimeoutMs: config.cache.redisTimeoutMs,
            name: 'engram-sessions',
          },
          logger,
        ),
        config.sessions.window,
        config.cache.redisTimeoutMs,
      )
    : config.store.kind === 'sqlite'
      ? new LocalSessionState(config.sessions.window, clock)
      : null;
  const timeoutModels = new TimeoutModels(store, clock, logger, config.activityFlushMs);
  const sessions = new SessionService({
    store,
    memories,
    search,
    preloader: new Preloader(
      store,
      search,
      config.search.halfLifeMs,
      config.sessions.preloadBuildMax,
      (err) => logger.debug({ err }, 'index warming at session start failed'),
    ),
    models: timeoutModels,
    hot,
    activity,
    clock,
    config: config.sessions,
    onEnd: async (tenant, userId, summary) => {
      if (summary) await afterWrite(tenant, [userId], [summary]);
    },
  });
  const sweeper = new SessionSweeper(store, clock, logger, config.sessions.sweepMs, (t, id) =>
    sessions.expire(t, id),
  );
  sessions.useSweeper(sweeper);
  const warming = new WarmScheduler(store, reads, clock, logger, config.warm);
  return {
    config,
    logger,
    clock,
    store,
    cache,
    keys: new ApiKeys(store, clock),
    idempotency,
    memories,
    reads,
    purge,
    activity,
    warmer,
    warming,
    search,
    indexes,
    access,
    sessions,
    sweeper,
    timeoutModels,
    start() {
      void sweeper.start();
      timeoutModels.start();
      purge.start();
      activity.start();
      access.start();
      warming.start();
    },
    async close() {
      await sweeper.stop();
      await timeoutModels.stop();
      hot?.close();
      warming.stop();
      await purge.stop();
      await activity.stop();
      await access.stop();
      await warmer.stop();
      await cache.close();
      await rawStore.close();
    },
  };
}
