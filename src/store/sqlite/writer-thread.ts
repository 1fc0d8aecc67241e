import { Worker } from 'node:worker_threads';
import { StoreUnavailable } from '../store.ts';
import type {
  SqliteWrites,
  SqliteWritesOptions,
  WriteChannel,
  WriteMethod,
  WriteStats,
} from './sqlite-writes.ts';
import { WriteStatsBoard } from './write-stats-board.ts';
import {
  fromWire,
  type WriterCall,
  type WriterData,
  type WriterMessage,
} from './writer-protocol.ts';

/** A thread that stopped is started again at the next call, but not sooner than this after its start. */
const RESTART_AFTER_MS = 1_000;

/** Options of a {@link WriterThread}. */
export interface WriterThreadOptions extends SqliteWritesOptions {
  /** Told when the thread stops unasked (its calls in progress fail with StoreUnavailable). */
  onFailure?: (err: unknown) => void;
  /** A thread that stopped is started again at the next call, but not sooner than this after its start. @default 1000 */
  restartAfterMs?: number;
}

/**
 * Starts the writer thread's entry: the compiled module next to this one, or, when the store
 * runs from its TypeScript sources (tests, `npm run dev`), the source through tsx, whose
 * loader a worker thread does not inherit.
 */
function startWorker(data: WriterData): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts'))
    return new Worker(new URL('./writer-worker.js', here), { workerData: data });
  // The module's ESM entry (require.resolve would give its CommonJS one).
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./writer-worker.ts', here).href;
  const source = `import(${JSON.stringify(tsx)}).then((api) => api.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(here)}));`;
  return new Worker(source, { eval: true, workerData: data });
}

/**
 * The store's writing side on a thread of its own (writer-worker.ts): every statement that
 * changes the database, and its flush, run there, so that the event loop that answers requests
 * never holds a write transaction. Under the realistic mix the writes' group commits took 16% of
 * the main thread and held it for up to 55–72 ms at a time (a commit of 60 writes).
 *
 * Calls are answered in the order the thread finishes them; a write is answered once it is on
 * disk, as before. When the thread dies, its calls in progress fail with StoreUnavailable
 * (none of them was acknowledged) and the next call starts another.
 */
export class WriterThread implements WriteChannel {
  readonly #data: WriterData;
  readonly #board = new WriteStatsBoard();
  readonly #onCheckpointFailure: (err: unknown) => void;
  readonly #onFailure: (err: unknown) => void;
  #worker: Worker | null = null;
  #startedAt = Number.NEGATIVE_INFINITY;
  readonly #restartAfterMs: number;
  #closing = false;
  #closed: Promise<void> | null = null;
  #nextId = 1;
  #outbox: WriterCall[] = [];
  readonly #pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: unknown) => void }
  >();

  constructor(file: string, options: WriterThreadOptions = {}) {
    const { onCheckpointFailure, onFailure, restartAfterMs, ...rest } = options;
    this.#restartAfterMs = restartAfterMs ?? RESTART_AFTER_MS;
    this.#data = { file, options: rest, board: this.#board.buffer };
    this.#onCheckpointFailure = onCheckpointFailure ?? (() => undefined);
    this.#onFailure = onFailure ?? (() => undefined);
    this.#start();
  }

  #start(): Worker {
    const worker = startWorker(this.#data);
    this.#startedAt = performance.now();
    this.#worker = worker;
    // Referenced only while calls wait for it: an idle store does not keep the process alive.
    worker.unref();
    worker.on('message', (message: WriterMessage) => {
      if ('checkpointFailure' in message) {
        this.#onCheckpointFailure(fromWire(message.checkpointFailure));
        return;
      }
      for (const reply of message.replies) {
        const waiting = this.#pending.get(reply.id);
        if (!waiting) continue;
        this.#settled(reply.id);
        if (reply.ok) waiting.resolve(reply.value);
        else waiting.reject(fromWire(reply.error));
      }
    });
    let failure: unknown = null;
    worker.on('error', (err) => {
      failure = err;
    });
    worker.once('exit', (code) => {
      if (this.#worker === worker) this.#worker = null;
      // Calls not yet posted are failed below with the others (a new thread must not get them
      // after their callers heard of the failure).
      this.#outbox = [];
      if (this.#closing && failure === null) return;
      const err = new StoreUnavailable(
        `the SQLite writer thread stopped (exit code ${code})${failure instanceof Error ? `: ${failure.message}` : ''}`,
      );
      for (const [id, waiting] of this.#pending) {
        this.#pending.delete(id);
        waiting.reject(err);
      }
      if (!this.#closing) this.#onFailure(err);
    });
    return worker;
  }

  #settled(id: number): void {
    this.#pending.delete(id);
    // Closing, the thread stays referenced until it has exited.
    if (this.#pending.size === 0 && !this.#closing) this.#worker?.unref();
  }

  #post(method: WriteMethod | 'close', args: unknown[]): Promise<unknown> {
    let worker = this.#worker;
    if (!worker) {
      if (this.#closing) return Promise.reject(new StoreUnavailable('the store is closed'));
      // No crash loop: a thread that died young is not started again at once.
      if (performance.now() - this.#startedAt < this.#restartAfterMs) {
        return Promise.reject(new StoreUnavailable('the SQLite writer thread stopped'));
      }
      worker = this.#start();
    }
    const id = this.#nextId++;
    if (this.#pending.size === 0) worker.ref();
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#send({ id, method, args });
    });
  }

  /**
   * Calls leave together, after the current I/O phase (as the group commit gathered the writes
   * of one turn on the event loop): one message and one wake-up of the thread for all of them.
   */
  #send(call: WriterCall): void {
    if (this.#outbox.length === 0) setImmediate(() => this.#sendOutbox());
    this.#outbox.push(call);
  }

  #sendOutbox(): void {
    const calls = this.#outbox;
    this.#outbox = [];
    if (calls.length === 0) return;
    try {
      // The thread that is running now: one that died meanwhile failed these calls already.
      if (!this.#worker) throw new StoreUnavailable('the SQLite writer thread stopped');
      this.#worker.postMessage(calls);
    } catch (err) {
      // A value that cannot be cloned (a DataCloneError), or no thread: these calls fail, the
      // process goes on.
      for (const { id } of calls) {
        const waiting = this.#pending.get(id);
        this.#settled(id);
        waiting?.reject(err);
      }
    }
  }

  call<K extends WriteMethod>(
    method: K,
    ...args: Parameters<SqliteWrites[K]>
  ): Promise<Awaited<ReturnType<SqliteWrites[K]>>> {
    return this.#post(method, args) as Promise<Awaited<ReturnType<SqliteWrites[K]>>>;
  }

  stats(): WriteStats {
    return this.#board.read();
  }

  /**
   * Ends the thread at once, as a crash would: its calls in progress fail with StoreUnavailable
   * (none was acknowledged, and SQLite rolls back what it had not committed). For fault tests.
   */
  async terminate(): Promise<void> {
    await this.#worker?.terminate();
  }

  /** Lets the calls in progress finish, closes the writer (a last checkpoint), ends the thread. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) {
      this.#closing = true;
      return;
    }
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const closed = this.#post('close', []);
    this.#closing = true;
    await closed.catch(() => undefined);
    await exited;
  }
}
