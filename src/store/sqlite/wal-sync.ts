import { type FileHandle, open } from 'node:fs/promises';
import type { SqliteStats } from '../store.ts';

/** The log's flushes to disk so far: how many, their time in all and the longest (ms). */
type WalFlushes = SqliteStats['walFlushes'];

/**
 * Makes SQLite's commits durable off the event loop. The store runs WAL with
 * `synchronous=NORMAL`: a commit writes its frames to the WAL file without waiting for the disk
 * (a process crash loses nothing: the frames are in the OS's page cache). Before a write is
 * acknowledged, {@link sync} flushes the WAL file with `fdatasync` on libuv's thread pool,
 * which is what `synchronous=FULL` does at every commit, but there it held the event loop for
 * the whole flush (0.5 to 5 ms on this machine's disk), and every request waited.
 *
 * Commits waiting together share one flush: a caller joins the flush that starts after the
 * one in progress (which may have begun before its commit), never an earlier one.
 */
export class WalSync {
  readonly #path: string | null;
  #handle: Promise<FileHandle> | null = null;
  #running: Promise<void> | null = null;
  #queued: Promise<void> | null = null;
  readonly #flushes: WalFlushes = { count: 0, ms: 0, maxMs: 0 };

  /** @param path the WAL file (`<database>-wal`); null for an in-memory database. */
  constructor(path: string | null) {
    this.#path = path;
  }

  /** Resolves once a flush of the WAL that began after this call has completed. */
  sync(): Promise<void> {
    if (this.#path === null) return Promise.resolve();
    if (this.#running === null) return this.#start();
    this.#queued ??= this.#running
      .catch(() => undefined)
      .then(() => {
        this.#queued = null;
        return this.#start();
      });
    return this.#queued;
  }

  #start(): Promise<void> {
    const run: Promise<void> = this.#flush().finally(() => {
      if (this.#running === run) this.#running = null;
    });
    this.#running = run;
    return run;
  }

  async #flush(): Promise<void> {
    // Opened at the first flush: the WAL exists once the first write committed. SQLite keeps
    // the same file (it rewinds it after a checkpoint) until its last connection closes.
    this.#handle ??= open(this.#path as string, 'r');
    try {
      const handle = await this.#handle;
      const started = performance.now();
      await handle.datasync();
      // Flushes run one at a time: their time in all over a period is the share of it in which
      // acknowledgements waited for the disk.
      const ms = performance.now() - started;
      this.#flushes.count++;
      this.#flushes.ms += ms;
      if (ms > this.#flushes.maxMs) this.#flushes.maxMs = ms;
    } catch (err) {
      // Reopened next time (a failed open is not cached).
      this.#handle = null;
      throw err;
    }
  }

  /** The flushes that completed so far (failed ones are not counted). */
  get flushes(): WalFlushes {
    return { ...this.#flushes };
  }

  /** Waits for the flushes in progress, then closes the file. */
  async close(): Promise<void> {
    await (this.#queued ?? this.#running)?.catch(() => undefined);
    const handle = this.#handle;
    this.#handle = null;
    await (await handle?.catch(() => null))?.close();
  }
}
