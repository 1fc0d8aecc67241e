import type { Logger } from 'pino';
import type { Store } from '../store/store.ts';
import type { Clock } from '../util/clock.ts';

/** Sessions ended per look at the store. */
const BATCH = 100;

/**
 * The one expiry sweeper of an instance: a single timer, set to the earliest expiry it knows
 * (from the store at start, and from every session this instance touches), and at most
 * `maxWaitMs` away, so that sessions touched elsewhere or before a restart are found too.
 * Each wake asks the store for the sessions due now and ends them; ending is a compare-and-set
 * in the store, so with several instances each session is ended by exactly one of them.
 */
export class SessionSweeper {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #maxWaitMs: number;
  readonly #expire: (tenant: string, id: string) => Promise<boolean>;
  #timer: NodeJS.Timeout | undefined;
  #wakeAt = Number.POSITIVE_INFINITY;
  #running: Promise<number> | undefined;
  #stopped = true;
  /** Sessions this instance ended by expiry. */
  expired = 0;

  constructor(
    store: Store,
    clock: Clock,
    logger: Logger,
    maxWaitMs: number,
    expire: (tenant: string, id: string) => Promise<boolean>,
  ) {
    this.#store = store;
    this.#clock = clock;
    this.#logger = logger;
    this.#maxWaitMs = maxWaitMs;
    this.#expire = expire;
  }

  /** Starts sweeping from the store's earliest expiry (sessions survive restarts). */
  async start(): Promise<void> {
    this.#stopped = false;
    let next: number | null = null;
    try {
      next = await this.#store.nextSessionExpiry();
    } catch (err) {
      this.#logger.warn({ err }, 'session sweeper: store unavailable at start');
    }
    this.#arm(next ?? this.#clock.now() + this.#maxWaitMs);
  }

  /** Notes a session's expiry: the sweeper wakes for it if it is the earliest. */
  schedule(expiresAt: number): void {
    if (!this.#stopped && expiresAt < this.#wakeAt) this.#arm(expiresAt);
  }

  #arm(at: number): void {
    const now = this.#clock.now();
    const when = Math.min(at, now + this.#maxWaitMs);
    clearTimeout(this.#timer);
    this.#wakeAt = when;
    this.#timer = setTimeout(() => void this.#wake(), Math.max(0, when - now));
    this.#timer.unref();
  }

  async #wake(): Promise<void> {
    this.#wakeAt = Number.POSITIVE_INFINITY;
    await this.sweep();
    if (this.#stopped) return;
    let next: number | null = null;
    try {
      next = await this.#store.nextSessionExpiry();
    } catch {
      // Retried on the next wake.
    }
    this.#arm(next ?? this.#clock.now() + this.#maxWaitMs);
  }

  /** Ends every session due now; returns how many this call ended. Concurrent calls share. */
  sweep(): Promise<number> {
    this.#running ??= this.#sweep().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #sweep(): Promise<number> {
    let ended = 0;
    try {
      for (;;) {
        const due = await this.#store.dueSessions(this.#clock.now(), BATCH);
        let progressed = 0;
        for (const { tenant, id } of due) {
          try {
            if (await this.#expire(tenant, id)) progressed++;
          } catch (err) {
            this.#logger.warn({ err, tenant, session: id }, 'session expiry failed; retried');
          }
        }
        ended += progressed;
        // Another instance may have ended the rest; stop when a batch made no progress.
        if (due.length < BATCH || progressed === 0) break;
      }
    } catch (err) {
      this.#logger.warn({ err }, 'session sweep failed; retried on the next wake');
    }
    this.expired += ended;
    return ended;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}
