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
}

/**
 * A keyed buffer written behind in batches, once per interval (or early when it fills): never
 * one store write per request. Callers merge into entries with {@link entry}.
 */
export class WriteBehind<V, K = string> {
  readonly #options: WriteBehindOptions<V>;
  #buffer = new Map<K, V>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;

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

  /** Entries waiting to be written. */
  get size(): number {
    return this.#buffer.size;
  }

  /** Writes the buffer; concurrent calls share one write. */
  flush(): Promise<void> {
    this.#flushing ??= this.#write().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #write(): Promise<void> {
    if (this.#buffer.size === 0) return;
    const entries = [...this.#buffer.values()];
    this.#buffer = new Map();
    const { batchSize } = this.#options;
    let written = 0;
    try {
      for (; written < entries.length; written += batchSize) {
        // A batch's promise settles in a microtask: without a turn of the event loop between
        // batches, a flush of 20,000 entries held it for the whole flush (≈ 400 ms on SQLite).
        if (written > 0) await yieldToLoop();
        await this.#options.write(entries.slice(written, written + batchSize));
      }
    } catch (err) {
      this.#options.onError(err, entries.length - written);
    }
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.flush(), this.#options.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }
}
