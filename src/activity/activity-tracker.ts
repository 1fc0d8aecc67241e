import type { Logger } from 'pino';
import { userScope } from '../cache/cache-keys.ts';
import type { ActivityDelta } from '../memory/memory-types.ts';
import type { Store } from '../store/store.ts';
import type { Clock } from '../util/clock.ts';
import { WriteBehind } from '../util/write-behind.ts';

/** Users whose activity is buffered before an early flush. */
const MAX_BUFFERED = 50_000;

/**
 * Records when each user is active (any read or write of their memories) and writes it behind,
 * in one batch per interval: never a store write per request. Warming reads it back to know
 * who was active recently and who is usually active at a given hour.
 */
export class ActivityTracker {
  readonly #clock: Clock;
  readonly #buffer: WriteBehind<ActivityDelta>;

  constructor(store: Store, clock: Clock, logger: Logger, intervalMs: number) {
    this.#clock = clock;
    this.#buffer = new WriteBehind({
      intervalMs,
      maxBuffered: MAX_BUFFERED,
      batchSize: 500,
      write: (batch) => store.recordActivity(batch),
      // Activity only guides warming: losing one interval of it is acceptable.
      onError: (err, users) => logger.warn({ err, users }, 'activity write failed'),
    });
  }

  /** Notes one request of a user (hot path: a map lookup and an increment). */
  touch(tenant: string, userId: string): void {
    const now = this.#clock.now();
    const delta = this.#buffer.entry(userScope(tenant, userId), () => ({
      tenant,
      userId,
      lastSeenAt: now,
      hours: new Array<number>(24).fill(0),
    }));
    delta.lastSeenAt = now;
    const hour = Math.floor(now / 3_600_000) % 24; // the UTC hour, without a Date
    delta.hours[hour] = (delta.hours[hour] ?? 0) + 1;
  }

  /** Drops a user's unwritten activity (they are being erased); see {@link WriteBehind.drop}. */
  forget(tenant: string, userId: string): Promise<void> {
    return this.#buffer.drop(userScope(tenant, userId));
  }

  /** Writes the buffered activity; concurrent calls share one write. */
  flush(): Promise<void> {
    return this.#buffer.flush();
  }

  start(): void {
    this.#buffer.start();
  }

  stop(): Promise<void> {
    return this.#buffer.stop();
  }
}
