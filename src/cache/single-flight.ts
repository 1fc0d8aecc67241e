/**
 * Runs one load per key at a time: callers that ask for a key while its load is in flight
 * share that load's promise, so N concurrent misses cost one store read.
 */
export class SingleFlight<T> {
  readonly #inFlight = new Map<string, Promise<T>>();

  /** `load()` unless a load of `key` is in flight; `joined` tells which happened. */
  run(key: string, load: () => Promise<T>): { promise: Promise<T>; joined: boolean } {
    const running = this.#inFlight.get(key);
    if (running) return { promise: running, joined: true };
    const promise = load().finally(() => {
      this.#inFlight.delete(key);
    });
    this.#inFlight.set(key, promise);
    return { promise, joined: false };
  }

  get size(): number {
    return this.#inFlight.size;
  }
}
