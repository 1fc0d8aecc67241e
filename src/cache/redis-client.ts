import { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** Settings of a Redis connection. */
export interface RedisOptions {
  url: string;
  /**
   * Per-command deadline; a slower answer counts as a failure. Not ioredis's `commandTimeout`
   * (it fails answers that came in time when the event loop was stalled): the users of the
   * client apply it to each command with `withDeadline` (deadline.ts). Here it bounds the
   * connect.
   */
  commandTimeoutMs: number;
  /** Connection name shown by CLIENT LIST. */
  name: string;
  /**
   * Subscriber mode: SUBSCRIBE is queued until connected, and its commands get no deadline
   * (the connection then only receives).
   */
  subscriber?: boolean;
}

/**
 * An ioredis client that fails fast instead of hanging: no offline queue, one retry per
 * request, a bounded connect timeout, reconnect with capped backoff. Errors are logged at most
 * once per connection state change, not per command. It sets no command deadline: every user
 * of a non-subscriber client wraps its commands in `withDeadline` (deadline.ts) with
 * `commandTimeoutMs`.
 */
export function createRedis(options: RedisOptions, logger: Logger): Redis {
  const client = new Redis(options.url, {
    connectionName: options.name,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: options.subscriber ?? false,
    connectTimeout: Math.max(500, options.commandTimeoutMs * 5),
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2_000),
    lazyConnect: false,
  });
  let reported = false;
  client.on('error', (err) => {
    if (reported) return;
    reported = true;
    logger.warn({ err, redis: options.name }, 'redis connection failed; degrading without it');
  });
  client.on('ready', () => {
    if (reported) logger.info({ redis: options.name }, 'redis connection restored');
    reported = false;
  });
  return client;
}

/** Resolves when `client` is ready, or false after `timeoutMs` (it keeps reconnecting). */
export function whenReady(client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      resolve(false);
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve(true);
    };
    client.once('ready', onReady);
  });
}
