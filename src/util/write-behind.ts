import { sortInSteps } from './sort-in-steps.ts';
import { yieldToLoop } from './yield.ts';

/** What a {@link WriteBehind} needs: how to write a batch and what to do when it fails. */
export interface WriteBehindOptions<V> {
  intervalMs: number;
  /** Entries buffered before an early flush. */
  maxBuffered: number;
  /** Writes one batch (at most `batchSize` entries). */
  write: (batch: V[]) => Promise<void>;
  batchSize: number;
  /** Called with the entries of a failed write (they are dropped). */
  onError: (err: unknown, dropped: number) => void;
  /**
   * Order of the entries before they are cut into batches (e.g. by key, so that a batch's rows
   * sit near each other in the store). Default: the order they were first buffered in.
   */
  compare?: (a: V, b: V) => number;
  /**
   * Spread the batches of a timed flush over this share of the interval, rather than writing
   * them back to back (0, the default: back to back). A write queued behind a batch waits for
   * one batch at most, not for the whole flush. An explicit {@link WriteBehind.flush} (stop, a
   * full buffer) writes what is left without pauses.
   */
  spread?: number;
}

/** Longest pause between two batches of a spread flush. */
const MAX_PAUSE_MS = 1_000;

/**
 * A keyed buffer written behind in batches, once per interval (or early when it fills): never
 * one store write per request. Callers merge into entries with {@link entry}.
 */
export class WriteBehind<V, K = string> {
  readonly #options: WriteBehindOptions<V>;
  #buffer = new Map<K, V>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  /** Set by an explicit flush: the write in progress stops pausing between batches. */
  #hurry = false;
  /** Ends the pause in progress early. */
  #wake: (() => void) | undefined;

  constructor(options: WriteBehindOptions<V>) {
    this.#options = options;
  }

  /** The buffered entry of `key`, created by `create` when absent (hot path: one lookup). */
  entry(key: K, create: () => V): V {
    let value = this.#buffer.get(key);
    if (value === undefined) {
      value = create();
      this.#buffer.set(key, value);
      if (this.#buffer.size >= this.#options.maxBuffered) void this.flush();
    }
    return value;
  }

  /** The buffered entry of `key`, if any (not yet written). */
  peek(key: K): V | undefined {
    return this.#buffer.get(key);
  }

  /** Buffers `value` under `key`, replacing what was buffered there. */
  set(key: K, value: V): void {
    this.#buffer.set(key, value);
    if (this.#buffer.size >= this.#options.maxBuffered) void this.flush();
  }

  /**
   * Drops the buffered entry of `key` (its user was erased); resolves once a write in
   * progress, which may hold an older copy of it, is done: what the caller erases next is not
   * written back after it.
   */
  async drop(key: K): Promise<void> {
    this.#buffer.delete(key);
    await this.#flushing;
  }

  /** Entries waiting to be written. */
  get size(): number {
    return this.#buffer.size;
  }

  /**
   * Writes the buffer without pauses; resolves once everything buffered at the call is written
   * (a write in progress is hurried, then what was buffered since is written too).
   */
  async flush(): Promise<void> {
    if (this.#flushing) {
      this.#hurry = true;
      this.#wake?.();
      await this.#flushing;
    }
    await this.#start(false);
  }

  /** The timer's flush: spread over the interval when {@link WriteBehindOptions.spread} says so. */
  #tick(): void {
    if (!this.#flushing) void this.#start((this.#options.spread ?? 0) > 0);
  }

  /** Starts a write of the buffer unless one is in progress; concurrent calls share it. */
  #start(paced: boolean): Promise<void> {
    this.#flushing ??= this.#write(paced).finally(() => {
      this.#flushing = undefined;
      this.#hurry = false;
    });
    return this.#flushing;
  }

  async #write(paced: boolean): Promise<void> {
    if (this.#buffer.size === 0) return;
    const buffered = [...this.#buffer.values()];
    this.#buffer = new Map();
    const { batchSize, compare, intervalMs, spread = 0 } = this.#options;
    // Entries buffered while the sort yields go into the new buffer: these are not changed.
    const entries = compare ? await sortInSteps(buffered, compare) : buffered;
    const batches = Math.ceil(entries.length / batchSize);
    const pauseMs = paced ? Math.min(MAX_PAUSE_MS, (intervalMs * spread) / batches) : 0;
    let written = 0;
    try {
      for (; written < entries.length; written += batchSize) {
        // A batch's promise settles in a microtask: without a turn of the event loop between
        // batches, a flush of 20,000 entries held it for the whole flush (≈ 400 ms on SQLite).
        if (written > 0) await (pauseMs > 0 && !this.#hurry ? this.#pause(pauseMs) : yieldToLoop());
        await this.#options.write(entries.slice(written, written + batchSize));
      }
    } catch (err) {
      this.#options.onError(err, entries.length - written);
    }
  }

  /** Waits `ms`, or less when an explicit flush hurries the write. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      // Like the interval's timer: background work never keeps the process alive (stop flushes).
      timer.unref();
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.#tick(), this.#options.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }
}
