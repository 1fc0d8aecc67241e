import type { Logger } from 'pino';
import type { CachedReads } from '../http/cached-reads.ts';
import type { Store } from '../store/store.ts';
import type { Clock } from '../util/clock.ts';

/** Settings of the warm scheduler. */
export interface WarmScheduleOptions {
  /** Users warmed at boot: the most recently active. */
  bootUsers: number;
  /** Users warmed ahead of each hour: those usually active then. */
  aheadUsers: number;
  /** Period of the ahead-of-time pass. */
  intervalMs: number;
}

const DAY = 86_400_000;

/**
 * Warms the cache before it is asked: at boot with the users most active in the last week, and
 * every interval with the users whose busiest hour (from their activity) starts within the
 * next interval. The work goes through the bounded warming queue.
 */
export class WarmScheduler {
  readonly #store: Store;
  readonly #reads: CachedReads;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #options: WarmScheduleOptions;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    store: Store,
    reads: CachedReads,
    clock: Clock,
    logger: Logger,
    options: WarmScheduleOptions,
  ) {
    this.#store = store;
    this.#reads = reads;
    this.#clock = clock;
    this.#logger = logger;
    this.#options = options;
  }

  /** Queues the most recently active users; returns how many were queued. */
  async warmRecent(): Promise<number> {
    if (this.#options.bootUsers === 0) return 0;
    const users = await this.#store.recentlyActiveUsers(
      this.#clock.now() - 7 * DAY,
      this.#options.bootUsers,
    );
    return users.filter((u) => this.#reads.warmUser(u.tenant, u.userId)).length;
  }

  /** Queues the users usually active in the coming interval; returns how many were queued. */
  async warmAhead(): Promise<number> {
    if (this.#options.aheadUsers === 0) return 0;
    const hour = new Date(this.#clock.now() + this.#options.intervalMs).getUTCHours();
    const users = await this.#store.usersUsuallyActiveAt(
      hour,
      this.#clock.now() - 30 * DAY,
      this.#options.aheadUsers,
    );
    return users.filter((u) => this.#reads.warmUser(u.tenant, u.userId)).length;
  }

  start(): void {
    if (this.#timer) return;
    this.warmRecent().then(
      (n) => this.#logger.info({ users: n }, 'warming recently active users'),
      (err: unknown) => this.#logger.warn({ err }, 'boot warming failed'),
    );
    this.#timer = setInterval(() => {
      this.warmAhead().catch((err: unknown) => this.#logger.warn({ err }, 'warming failed'));
    }, this.#options.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
