import type { Logger } from 'pino';
import type { Store } from '../store/store.ts';
import type { Clock } from '../util/clock.ts';
import { yieldToLoop } from '../util/yield.ts';

/** Rows deleted per step: each step stays within a few milliseconds. */
const CHUNK = 500;

/** What one purge pass removed. */
export interface PurgeCounts {
  expired: number;
  deleted: number;
  idempotency: number;
}

/**
 * Background cleanup: expired memories, memories deleted longer ago than the grace period,
 * and expired idempotency records, in chunks with a yield between them.
 */
export class PurgeJob {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #deleteGraceMs: number;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<PurgeCounts> | undefined;

  constructor(
    store: Store,
    clock: Clock,
    logger: Logger,
    options: { deleteGraceMs: number; intervalMs: number },
  ) {
    this.#store = store;
    this.#clock = clock;
    this.#logger = logger;
    this.#deleteGraceMs = options.deleteGraceMs;
    this.#intervalMs = options.intervalMs;
  }

  /** Runs a pass every interval until {@link stop}. */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      this.runOnce().catch((err) => this.#logger.warn({ err }, 'purge pass failed'));
    }, this.#intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a pass in progress. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  /** One pass; concurrent calls share it. */
  runOnce(): Promise<PurgeCounts> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #drain(step: () => Promise<number>): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await step();
      total += n;
      if (n < CHUNK) return total;
      await yieldToLoop();
    }
  }

  async #pass(): Promise<PurgeCounts> {
    const now = this.#clock.now();
    const counts = {
      expired: await this.#drain(() => this.#store.purgeExpired(now, CHUNK)),
      deleted: await this.#drain(() => this.#store.purgeDeleted(now - this.#deleteGraceMs, CHUNK)),
      idempotency: await this.#drain(() => this.#store.purgeIdempotency(now, CHUNK)),
    };
    if (counts.expired + counts.deleted + counts.idempotency > 0) {
      this.#logger.info(counts, 'purged');
    }
    return counts;
  }
}
