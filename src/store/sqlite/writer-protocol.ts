import { IdempotencyKeyTaken, StoreUnavailable } from '../store.ts';
import type { SqliteWritesOptions, WriteMethod } from './sqlite-writes.ts';

/** What the writer thread is started with. */
export interface WriterData {
  file: string;
  options: Omit<SqliteWritesOptions, 'onCheckpointFailure'>;
  /** The counters' shared memory (write-stats-board.ts). */
  board: SharedArrayBuffer;
}

/** A call to the writer thread: one of the writing side's methods, or its close (posted in batches). */
export interface WriterCall {
  id: number;
  method: WriteMethod | 'close';
  args: unknown[];
}

/** An error as it crosses between threads: what the store's callers look at. */
export interface WireError {
  name: string;
  message: string;
  /** SQLite's result code (`SQLITE_BUSY`…), which decides between a 503 and a 500. */
  code?: string;
}

/** The writer thread's answer to one call. */
export type WriterReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: WireError };

/**
 * What the writer thread posts back: the answers it has (several at once: a group commit
 * answers its writes together, and each message costs both threads a wake-up), or a checkpoint
 * worker's failure.
 */
export type WriterMessage = { replies: WriterReply[] } | { checkpointFailure: WireError };

/**
 * An error flattened for postMessage: structured cloning keeps an Error's message but not its
 * class nor SQLite's `code`, which the store's callers test.
 */
export function toWire(err: unknown): WireError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const code = (err as { code?: unknown }).code;
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return {
    name: err.name,
    message: err.name === 'StoreUnavailable' ? `${err.message}${cause}` : err.message,
    ...(typeof code === 'string' ? { code } : {}),
  };
}

/** The error a caller of the store sees for one that crossed from the writer thread. */
export function fromWire(wire: WireError): Error {
  if (wire.name === 'IdempotencyKeyTaken') return new IdempotencyKeyTaken(wire.message);
  if (wire.name === 'StoreUnavailable') return new StoreUnavailable(wire.message);
  const err = new Error(wire.message) as Error & { code?: string };
  err.name = wire.name;
  if (wire.code !== undefined) err.code = wire.code;
  return err;
}
