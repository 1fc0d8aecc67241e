import type { Logger } from 'pino';
import { userScope } from '../cache/cache-keys.ts';
import type { Store } from '../store/store.ts';
import type { Clock } from '../util/clock.ts';
import { entryLru } from '../util/entry-lru.ts';
import { WriteBehind } from '../util/write-behind.ts';
import type { TimeoutModelRow } from './session-types.ts';
import { TimeoutModel } from './timeout-model.ts';

/** How long a model read from the store is used before it is read again (other instances learn too). */
const READ_TTL_MS = 60_000;

/**
 * Users' timeout models: held in process, read from the store when missing or old, and written
 * behind in batches (a model is learned state: a crash loses at most one interval of learning,
 * while every session start, message and touch is spared a commit of its own).
 */
export class TimeoutModels {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #held = entryLru<string, { model: TimeoutModel; readAt: number }>(100_000);
  readonly #pending: WriteBehind<TimeoutModelRow>;

  constructor(store: Store, clock: Clock, logger: Logger, intervalMs: number) {
    this.#store = store;
    this.#clock = clock;
    this.#pending = new WriteBehind({
      intervalMs,
      maxBuffered: 10_000,
      batchSize: 500,
      write: (rows) => store.putTimeoutModels(rows),
      onError: (err, users) => logger.warn({ err, users }, 'timeout model write failed'),
    });
  }

  /** A user's model (empty for a new user). */
  async get(tenant: string, userId: string): Promise<TimeoutModel> {
    const scope = userScope(tenant, userId);
    const now = this.#clock.now();
    const held = this.#held.get(scope);
    if (held && now - held.readAt < READ_TTL_MS) return held.model;
    const unwritten = this.#pending.peek(scope);
    const row = unwritten ?? (await this.#store.getTimeoutModel(tenant, userId));
    const model = TimeoutModel.fromJSON(row?.model);
    this.#held.set(scope, { model, readAt: now });
    return model;
  }

  /** Keeps a changed model and queues it for the store. */
  save(tenant: string, userId: string, model: TimeoutModel): void {
    const scope = userScope(tenant, userId);
    const now = this.#clock.now();
    this.#held.set(scope, { model, readAt: now });
    this.#pending.set(scope, { tenant, userId, model: model.toJSON(), updatedAt: now });
  }

  /** Drops a user's model, held and unwritten (they are being erased). */
  forget(tenant: string, userId: string): Promise<void> {
    const scope = userScope(tenant, userId);
    this.#held.delete(scope);
    return this.#pending.drop(scope);
  }

  /** Writes the queued models now. */
  flush(): Promise<void> {
    return this.#pending.flush();
  }

  start(): void {
    this.#pending.start();
  }

  stop(): Promise<void> {
    return this.#pending.stop();
  }
}
