/** One queued write with the callbacks of its caller. */
interface Pending<Op> {
  op: Op;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: small writes that arrive in the same turn of the event loop are committed in
 * one transaction, so N concurrent writes cost one fsync instead of N. `commit` runs them all
 * in one transaction, each in its own savepoint, and returns each one's error (or null); every
 * caller is answered only after the transaction has committed.
 */
export class GroupCommit<Op> {
  readonly #commit: (ops: Op[]) => Array<unknown | null>;
  readonly #schedule: (flush: () => void) => Promise<void>;
  readonly #maxOps: number;
  #pending: Pending<Op>[] = [];
  #scheduled = false;

  /**
   * @param commit runs the ops in one transaction; throws if the transaction itself fails.
   * @param schedule runs `flush` when the store may write (under its write lock).
   * @param maxOps most ops in one transaction.
   */
  constructor(
    commit: (ops: Op[]) => Array<unknown | null>,
    schedule: (flush: () => void) => Promise<void>,
    maxOps = 256,
  ) {
    this.#commit = commit;
    this.#schedule = schedule;
    this.#maxOps = maxOps;
  }

  /** Queues a write; resolves once it is committed, rejects with its own error. */
  add(op: Op): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ op, resolve, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      // After the current I/O phase, so that requests read in the same turn share the commit.
      setImmediate(() => {
        this.#schedule(() => this.#flush()).catch(() => undefined);
      });
    });
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
    let errors: Array<unknown | null>;
    try {
      errors = this.#commit(batch.map((p) => p.op));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => {
      const err = errors[i];
      if (err === null || err === undefined) p.resolve();
      else p.reject(err);
    });
  }
}
