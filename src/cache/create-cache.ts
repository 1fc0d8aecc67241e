import type { Logger } from 'pino';
import type { Clock } from '../util/clock.ts';
import { CacheStack } from './cache-stack.ts';
import { newCounters } from './cache-stats.ts';
import { InvalidationBus } from './invalidation-bus.ts';
import { L1Cache } from './l1-cache.ts';
import { createRedis, whenReady } from './redis-client.ts';
import { RedisL2 } from './redis-l2.ts';
import { Versions } from './versions.ts';

/** Settings of the cache stack (see config.ts for each). */
export interface CacheConfig {
  redisUrl: string;
  redisTimeoutMs: number;
  l1MaxBytes: number;
  /** How long a local copy of a version is trusted without Redis (staleness bound). */
  l1TrustMs: number;
  ttlMs: number;
  graceMs: number;
}

/** The cache stack with its connections. */
export interface Cache {
  stack: CacheStack;
  /** Whether Redis (L2 and bus) is configured. */
  distributed: boolean;
  /** Resolves when Redis answers, or false after `timeoutMs` (Engram runs without it). */
  ready(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** Builds L1, and with a Redis URL also L2, the versions in Redis and the invalidation bus. */
export function createCache(config: CacheConfig, clock: Clock, logger: Logger): Cache {
  const counters = newCounters();
  // Whole milliseconds: lru-cache refuses a fractional TTL (3,600,000 × 1.1 is not whole).
  const l1 = new L1Cache(
    config.l1MaxBytes,
    Math.ceil(config.ttlMs * 1.1 + config.graceMs),
    counters,
  );
  const options = { ttlMs: config.ttlMs, graceMs: config.graceMs };
  if (!config.redisUrl) {
    const versions = new Versions(null, clock, config.l1TrustMs);
    const stack = new CacheStack({ l1, l2: null, versions, bus: null, clock, counters, options });
    return {
      stack,
      distributed: false,
      ready: async () => true,
      close: async () => undefined,
    };
  }
  const redisOptions = { url: config.redisUrl, commandTimeoutMs: config.redisTimeoutMs };
  const client = createRedis({ ...redisOptions, name: 'engram-cache' }, logger);
  const subscriber = createRedis({ ...redisOptions, name: 'engram-bus', subscriber: true }, logger);
  const l2 = new RedisL2(client, counters, config.redisTimeoutMs);
  const versions = new Versions(l2, clock, config.l1TrustMs);
  let stack: CacheStack | undefined;
  const bus = new InvalidationBus(
    client,
    subscriber,
    {
      onMessage: (m) => stack?.applyRemote(m.scope, m.version),
      onReconnect: () => {
        counters.busReconnectClears++;
        stack?.clearLocal();
      },
    },
    logger,
    config.l1TrustMs,
    config.redisTimeoutMs,
  );
  versions.busHealthy = () => bus.healthy();
  stack = new CacheStack({ l1, l2, versions, bus, clock, counters, options });
  // Versions bumped while Redis was unreachable are written and announced once it is back.
  let replaying = false;
  const replay = (): void => {
    if (replaying || versions.pending === 0) return;
    replaying = true;
    void versions
      .replayPending()
      .then(async (replayed) => {
        for (const { scope, version } of replayed) await bus.publish(scope, version);
      })
      .finally(() => {
        replaying = false;
      });
  };
  client.on('ready', replay);
  // A bump can also fail while the connection stays up (a command timeout, the circuit open):
  // no reconnect follows, so retry those too, else other instances keep reading the old version.
  const replayTimer = setInterval(() => {
    if (client.status === 'ready') replay();
  }, 1_000);
  replayTimer.unref();
  return {
    stack,
    distributed: true,
    ready: async (timeoutMs) => {
      const [a, b] = await Promise.all([
        whenReady(client, timeoutMs),
        whenReady(subscriber, timeoutMs),
      ]);
      return a && b;
    },
    close: async () => {
      clearInterval(replayTimer);
      bus.stop();
      client.disconnect();
      subscriber.disconnect();
    },
  };
}
