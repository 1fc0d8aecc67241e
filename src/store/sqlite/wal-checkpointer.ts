import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** Checkpoint counters. */
export interface CheckpointStats {
  checkpoints: number;
  /** Log frames copied into the database file. */
  frames: number;
  /** Longest checkpoint so far (off the event loop), ms. */
  maxMs: number;
  /** Whether the worker failed (the writer checkpoints on the event loop again). */
  failed: boolean;
}

/** What the worker reports after each checkpoint. */
interface CheckpointReport {
  checkpointed: number;
  /** Frames in the log: all of them copied means the next write starts the log over. */
  log: number;
  ms: number;
  /** Whether it was asked for ({@link WalCheckpointer.catchUp}) rather than timed. */
  asked: boolean;
}

/** better-sqlite3 as this module resolves it, for the worker (it may run from anywhere). */
const SQLITE_MODULE = createRequire(import.meta.url).resolve('better-sqlite3');

/**
 * The worker: its own connection, a PASSIVE checkpoint (it copies what no reader still needs,
 * never waits for the writer nor blocks it) every `intervalMs`, and a last one when told to
 * stop. Plain CommonJS source rather than a module file: a worker does not inherit the loader
 * hooks that run the TypeScript sources (tests), and a file would differ between `src/` and
 * `dist/`.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqliteModule);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
function checkpoint(asked) {
  const started = performance.now();
  const [result] = db.pragma('wal_checkpoint(PASSIVE)');
  parentPort.postMessage({
    checkpointed: result ? result.checkpointed : 0,
    log: result ? result.log : 0,
    ms: performance.now() - started,
    asked: asked === true,
  });
}
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message === 'now') return checkpoint(true);
  if (message !== 'stop') return;
  clearInterval(timer);
  try {
    checkpoint();
  } finally {
    db.close();
    parentPort.close();
  }
});
`;

/**
 * Checkpoints a WAL-mode SQLite database from a worker thread. SQLite's own checkpoints run on
 * the connection that commits, once the log passes 1,000 pages: the copy of the log into the
 * database file and its two fsyncs then held the event loop, every second or two under the
 * mix's writes. The writer turns its automatic checkpoints off while this runs; `onFailure`
 * (the worker could not open the database, or died) is where it turns them on again.
 */
export class WalCheckpointer {
  readonly #worker: Worker;
  readonly #exited: Promise<void>;
  #stopping = false;
  /** Callers of {@link catchUp} waiting for their checkpoint, oldest first. */
  readonly #asked: Array<(complete: boolean) => void> = [];
  readonly stats: CheckpointStats = { checkpoints: 0, frames: 0, maxMs: 0, failed: false };

  constructor(file: string, intervalMs: number, onFailure: (err: unknown) => void) {
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { file, intervalMs, sqliteModule: SQLITE_MODULE },
    });
    // The worker must not keep the process alive: the store's close stops it.
    this.#worker.unref();
    const fail = (err: unknown): void => {
      for (const resolve of this.#asked.splice(0)) resolve(false);
      if (this.stats.failed || this.#stopping) return;
      this.stats.failed = true;
      onFailure(err);
    };
    this.#worker.on('message', (report: CheckpointReport) => {
      this.stats.checkpoints++;
      this.stats.frames += report.checkpointed;
      if (report.ms > this.stats.maxMs) this.stats.maxMs = report.ms;
      if (report.asked) this.#asked.shift()?.(report.checkpointed >= report.log);
    });
    this.#worker.on('error', fail);
    this.#exited = new Promise((resolve) => {
      this.#worker.once('exit', (code) => {
        fail(new Error(`the checkpoint worker exited (code ${code})`));
        resolve();
      });
    });
  }

  /**
   * A checkpoint now; resolves true when it copied the whole log (the next write then starts
   * the log over), false when a reader kept part of it or the worker is gone.
   */
  catchUp(): Promise<boolean> {
    if (this.stats.failed || this.#stopping) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.#asked.push(resolve);
      this.#worker.postMessage('now');
    });
  }

  /** A last checkpoint, then the worker exits. */
  async stop(): Promise<void> {
    this.#stopping = true;
    // Held until it has exited (unreferenced, it would not keep the process waiting for it).
    this.#worker.ref();
    this.#worker.postMessage('stop');
    await this.#exited;
  }
}
