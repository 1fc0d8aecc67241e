import type { Logger } from 'pino';
import type { ActivityDelta } from '../memory/memory-types.ts';
import type { Store } from '../store/store.ts';
import type { Clock } from '../util/clock.ts';

/** Users whose activity is buffered before an early flush. */
const MAX_BUFFERED = 50_000;

/**
 * Records when each user is active (any read or write of their memories) and writes it behind,
 * in one batch per interval: never a store write per request. Warming reads it back to know
 * who was active recently and who is usually active at a given hour.
 */
export class ActivityTracker {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  #buffer = new Map<string, ActivityDelta>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;

  constructor(store: Store, clock: Clock, logger: Logger, intervalMs: number) {
    this.#store = store;
    this.#clock = clock;
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  /** Notes one request of a user (hot path: a map lookup and an increment). */
  touch(tenant: string, userId: string): void {
    const now = this.#clock.now();
    const key = `${tenant}/${userId}`;
    let delta = this.#buffer.get(key);
    if (!delta) {
      delta = { tenant, userId, lastSeenAt: now, hours: new Array<number>(24).fill(0) };
      this.#buffer.set(key, delta);
      if (this.#buffer.size >= MAX_BUFFERED) void this.flush();
    }
    delta.lastSeenAt = now;
    const hour = Math.floor(now / 3_600_000) % 24; // the UTC hour, without a Date
    delta.hours[hour] = (delta.hours[hour] ?? 0) + 1;
  }

  /** Writes the buffered activity; concurrent calls share one write. */
  flush(): Promise<void> {
    this.#flushing ??= this.#write().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #write(): Promise<void> {
    if (this.#buffer.size === 0) return;
    const deltas = [...this.#buffer.values()];
    this.#buffer = new Map();
    try {
      for (let i = 0; i < deltas.length; i += 500) {
        await this.#store.recordActivity(deltas.slice(i, i + 500));
      }
    } catch (err) {
      // Activity only guides warming: losing one interval of it is acceptable.
      this.#logger.warn({ err, users: deltas.length }, 'activity write failed');
    }
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.flush(), this.#intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }
}
