/** One queued unit of work with the callbacks of its caller. */
interface Pending {
  work: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** What one unit of work of a group gave: its value, or the error it threw. */
export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Runs units of work in one transaction, in order: always the first, and each later one only
 * while `more()` says so. Returns the outcomes of the units it ran (a prefix of `works`); throws
 * if the transaction itself fails.
 */
export type CommitUnits = (works: Array<() => unknown>, more: () => boolean) => Outcome[];

/** Limits of one transaction of a {@link GroupCommit}. */
export interface GroupCommitOptions {
  /** Most units in one transaction. @default 256 */
  maxOps?: number;
  /**
   * Milliseconds of work after which a transaction takes no further unit; the units left wait
   * for the next one, a turn of the event loop later. @default {@link GROUP_BUDGET_MS}
   */
  budgetMs?: number;
  /** The clock the budget is read from (tests). @default performance.now */
  now?: () => number;
}

/**
 * The work one transaction of a group may hold the event loop for. Writes that arrive while
 * the loop is busy pile up; committed in one transaction, 60 of them held the loop for 55–70 ms
 * (≈ 0.9 ms each: session appends with their full-text rows and history), every request read
 * meanwhile waited that long, and more writes piled up behind them. Cut at the budget, the
 * requests read between two transactions are answered in between.
 */
export const GROUP_BUDGET_MS = 4;

/**
 * Group commit: small writes that arrive in the same turn of the event loop are committed in
 * one transaction, so N concurrent writes cost one fsync instead of N. `commit` runs the units
 * of work in one transaction, each in its own savepoint (one that throws rolls back alone), and
 * returns each one's outcome; every caller is answered only after the transaction committed.
 * A transaction takes units until its time budget is spent; the rest go first into the next.
 */
export class GroupCommit {
  readonly #commit: CommitUnits;
  readonly #schedule: (flush: () => void) => Promise<void>;
  readonly #durable: () => Promise<void>;
  readonly #maxOps: number;
  readonly #budgetMs: number;
  readonly #now: () => number;
  #pending: Pending[] = [];
  #scheduled = false;

  /**
   * @param commit runs units in one transaction, while the budget lasts ({@link CommitUnits}).
   * @param schedule runs `flush` when the store may write (under its write lock).
   * @param durable resolves once what was committed is on disk: callers are answered then.
   */
  constructor(
    commit: CommitUnits,
    schedule: (flush: () => void) => Promise<void>,
    durable: () => Promise<void>,
    options: GroupCommitOptions = {},
  ) {
    this.#commit = commit;
    this.#schedule = schedule;
    this.#durable = durable;
    this.#maxOps = options.maxOps ?? 256;
    this.#budgetMs = options.budgetMs ?? GROUP_BUDGET_MS;
    this.#now = options.now ?? (() => performance.now());
  }

  /**
   * Queues a unit of work (synchronous statements); resolves with its value once the group is
   * committed, rejects with its own error.
   */
  add<R>(work: () => R): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#pending.push({ work, resolve: resolve as (value: unknown) => void, reject });
      this.#later();
    });
  }

  /**
   * Flushes after the current I/O phase (once), so that requests read in the same turn share
   * the commit, and those read during a commit are served before the next.
   */
  #later(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#schedule(() => this.#flush()).catch(() => undefined);
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const taken = this.#pending.splice(0, this.#maxOps);
    const deadline = this.#now() + this.#budgetMs;
    let outcomes: Outcome[];
    try {
      outcomes = this.#commit(
        taken.map((p) => p.work),
        () => this.#now() < deadline,
      );
    } catch (err) {
      for (const p of taken) p.reject(err);
      if (this.#pending.length > 0) this.#later();
      return;
    }
    // The units the budget left out go first, into the next transaction (at least one unit
    // is settled per transaction: a commit that ran none cannot stall the queue).
    const ran = Math.max(1, outcomes.length);
    const batch = taken.slice(0, ran);
    this.#pending.unshift(...taken.slice(ran));
    if (this.#pending.length > 0) this.#later();
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
