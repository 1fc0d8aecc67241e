/** One queued unit of work with the callbacks of its caller. */
interface Pending {
  work: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** What one unit of work of a group gave: its value, or the error it threw. */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Group commit: small writes that arrive in the same turn of the event loop are committed in
 * one transaction, so N concurrent writes cost one fsync instead of N. `commit` runs the units
 * of work in one transaction, each in its own savepoint (one that throws rolls back alone), and
 * returns each one's outcome; every caller is answered only after the transaction committed.
 */
export class GroupCommit {
  readonly #commit: (works: Array<() => unknown>) => Outcome[];
  readonly #schedule: (flush: () => void) => Promise<void>;
  readonly #durable: () => Promise<void>;
  readonly #maxOps: number;
  #pending: Pending[] = [];
  #scheduled = false;

  /**
   * @param commit runs the units in one transaction; throws if the transaction itself fails.
   * @param schedule runs `flush` when the store may write (under its write lock).
   * @param durable resolves once what was committed is on disk: callers are answered then.
   * @param maxOps most units in one transaction.
   */
  constructor(
    commit: (works: Array<() => unknown>) => Outcome[],
    schedule: (flush: () => void) => Promise<void>,
    durable: () => Promise<void>,
    maxOps = 256,
  ) {
    this.#commit = commit;
    this.#schedule = schedule;
    this.#durable = durable;
    this.#maxOps = maxOps;
  }

  /**
   * Queues a unit of work (synchronous statements); resolves with its value once the group is
   * committed, rejects with its own error.
   */
  add<R>(work: () => R): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#pending.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      // After the current I/O phase, so that requests read in the same turn share the commit.
      setImmediate(() => {
        this.#schedule(() => this.#flush()).catch(() => undefined);
      });
    });
  }

  /** Units queued and not yet taken into a transaction. */
  get queued(): number {
    return this.#pending.length;
  }

  #flush(): void {
    const batch = this.#pending.splice(0, this.#maxOps);
    this.#scheduled = false;
    if (this.#pending.length > 0) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#schedule(() => this.#flush()).catch(() => undefined);
      });
    }
    let outcomes: Outcome[];
    try {
      outcomes = this.#commit(batch.map((p) => p.work));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    // A unit that failed was rolled back: its caller hears at once. The others, once their
    // commit is on disk (or that it could not be flushed).
    const committed: Array<{ p: Pending; value: unknown }> = [];
    batch.forEach((p, i) => {
      const outcome = outcomes[i];
      if (outcome?.ok) committed.push({ p, value: outcome.value });
      else p.reject(outcome ? outcome.error : new Error('group commit: no outcome'));
    });
    if (committed.length === 0) return;
    this.#durable().then(
      () => {
        for (const { p, value } of committed) p.resolve(value);
      },
      (err: unknown) => {
        for (const { p } of committed) p.reject(err);
      },
    );
  }
}
