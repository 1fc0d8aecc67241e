import type { CacheCounters } from './cache-stats.ts';

/**
 * Runs warming tasks with bounded concurrency and a bounded queue, so that warming never
 * starves live traffic: beyond the queue bound, new tasks are dropped (warming is a hint).
 * Tasks for a key already queued or running are not queued twice.
 */
export class Warmer {
  readonly #concurrency: number;
  readonly #maxQueued: number;
  readonly #counters: CacheCounters;
  readonly #onError: (err: unknown) => void;
  readonly #queue: Array<{ key: string; task: () => Promise<void> }> = [];
  readonly #known = new Set<string>();
  #running = 0;
  #idle: Array<() => void> = [];

  constructor(
    concurrency: number,
    maxQueued: number,
    counters: CacheCounters,
    onError: (err: unknown) => void,
  ) {
    this.#concurrency = concurrency;
    this.#maxQueued = maxQueued;
    this.#counters = counters;
    this.#onError = onError;
  }

  /** Queues `task` under `key`; false when dropped (queue full or already queued). */
  enqueue(key: string, task: () => Promise<void>): boolean {
    if (this.#known.has(key) || this.#queue.length >= this.#maxQueued) return false;
    this.#known.add(key);
    this.#queue.push({ key, task });
    this.#pump();
    return true;
  }

  #pump(): void {
    while (this.#running < this.#concurrency && this.#queue.length > 0) {
      const next = this.#queue.shift();
      if (!next) break;
      this.#running++;
      next
        .task()
        .then(
          () => {
            this.#counters.warmed++;
          },
          (err: unknown) => this.#onError(err),
        )
        .finally(() => {
          this.#running--;
          this.#known.delete(next.key);
          this.#pump();
          if (this.#running === 0 && this.#queue.length === 0) {
            for (const resolve of this.#idle.splice(0)) resolve();
          }
        });
    }
  }

  /** Drops what is queued and waits for what is running (shutdown). */
  async stop(): Promise<void> {
    for (const { key } of this.#queue.splice(0)) this.#known.delete(key);
    await this.idle();
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.#running === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  get queued(): number {
    return this.#queue.length;
  }
}
