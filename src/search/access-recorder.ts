import type { Logger } from 'pino';
import type { AccessDelta } from '../memory/memory-types.ts';
import { accessOrder } from '../store/row-mapping.ts';
import type { Store } from '../store/store.ts';
import { WriteBehind } from '../util/write-behind.ts';

/** Memories whose accesses are buffered before an early flush. */
const MAX_BUFFERED = 100_000;

/**
 * Counts accesses of memories returned by search and writes them behind, one batch per
 * interval (`recordAccess`: access count and last-accessed time only, no new version).
 */
export class AccessRecorder {
  readonly #buffer: WriteBehind<AccessDelta>;

  constructor(store: Store, logger: Logger, intervalMs: number) {
    this.#buffer = new WriteBehind({
      intervalMs,
      maxBuffered: MAX_BUFFERED,
      // Each row of a batch is a random page of the memories table: small batches keep one
      // write short (the event loop turns between batches).
      batchSize: 100,
      // The stores' order, over the whole flush rather than per batch: neighbours in a batch
      // share pages, and a commit writes fewer of them.
      compare: accessOrder,
      // A flush of a busy interval is 100+ batches (each a commit of ≈ 100 pages): back to back
      // they held the store's write lock for up to a second, and every request's write waited
      // behind them. Spread over half the interval, a request's write waits for one at most.
      spread: 0.5,
      write: (batch) => store.recordAccess(batch),
      // Access statistics steer ranking a little; an interval lost to an outage is acceptable.
      onError: (err, memories) => logger.warn({ err, memories }, 'access statistics write failed'),
    });
  }

  /** Notes one access of a memory at `at` (hot path: a map lookup and an increment). */
  record(tenant: string, id: string, at: number): void {
    // Keyed by id alone (ULIDs do not repeat), which spares building a key per access; the
    // tenant is part of the key only if another tenant's memory holds the same id.
    let delta = this.#buffer.entry(id, () => ({ tenant, id, count: 0, at }));
    if (delta.tenant !== tenant) {
      delta = this.#buffer.entry(`${tenant}\u0000${id}`, () => ({ tenant, id, count: 0, at }));
    }
    delta.count++;
    if (at > delta.at) delta.at = at;
  }

  /** Accesses waiting to be written. */
  get pending(): number {
    return this.#buffer.size;
  }

  /** Writes the buffered accesses; concurrent calls share one write. */
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
