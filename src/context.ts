import type { Logger } from 'pino';
import { ApiKeys } from './auth/api-keys.ts';
import type { Config } from './config.ts';
import { PurgeJob } from './jobs/purge-job.ts';
import { Idempotency } from './memory/idempotency.ts';
import { MemoryService } from './memory/memory-service.ts';
import { openStore } from './store/open-store.ts';
import type { Store } from './store/store.ts';
import { type Clock, systemClock } from './util/clock.ts';

/** Every service of one Engram instance, wired once. */
export interface ServiceContext {
  config: Config;
  logger: Logger;
  clock: Clock;
  store: Store;
  keys: ApiKeys;
  idempotency: Idempotency;
  memories: MemoryService;
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
  const store = overrides.store ?? openStore(config.store, logger);
  try {
    await store.migrate();
  } catch (err) {
    await store.close();
    throw err;
  }
  const idempotency = new Idempotency(store, clock, config.idempotencyTtlMs);
  const purge = new PurgeJob(store, clock, logger, {
    deleteGraceMs: config.deleteGraceMs,
    intervalMs: config.purgeIntervalMs,
  });
  return {
    config,
    logger,
    clock,
    store,
    keys: new ApiKeys(store, clock),
    idempotency,
    memories: new MemoryService(store, clock, idempotency, {
      deleteGraceMs: config.deleteGraceMs,
    }),
    purge,
    async close() {
      await purge.stop();
      await store.close();
    },
  };
}
