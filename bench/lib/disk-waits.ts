/**
 * How long the server's writes waited for the disk during a run, from `GET /v1/stats/store`
 * read before and after it: the write-ahead log's flushes (SQLite), which run one at a time and
 * gate every acknowledgement.
 */
import type { SqliteStats } from '../../src/store/store.ts';

/** The log's flushes as `GET /v1/stats/store` reports them. */
type Flushes = SqliteStats['walFlushes'];

/** What the log's flushes did over a run. */
export interface DiskWaits {
  /** Flushes per second of the run. */
  perSec: number;
  /** Mean flush (ms). */
  meanMs: number;
  /** Share of the run in which a flush was in progress (0…1). */
  busy: number;
  /** Longest flush since the server started (ms). */
  maxMs: number;
}

/** The log's flushes so far; null for a store that does not report them (PostgreSQL). */
export async function logFlushes(base: string, key: string): Promise<Flushes | null> {
  const res = await fetch(`${base}/v1/stats/store`, {
    headers: { authorization: `Bearer ${key}` },
    signal: AbortSignal.timeout(5_000),
  });
  if (!res.ok) throw new Error(`GET /v1/stats/store: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as Partial<SqliteStats>;
  return body.walFlushes ?? null;
}

/** Runs `work` and reports the log's flushes over it (null without them). */
export async function withDiskWaits<T>(
  base: string,
  key: string,
  work: () => Promise<T>,
): Promise<{ result: T; disk: DiskWaits | null }> {
  const before = await logFlushes(base, key);
  const started = performance.now();
  const result = await work();
  const seconds = (performance.now() - started) / 1000;
  const after = await logFlushes(base, key);
  return { result, disk: before && after ? diskWaits(before, after, seconds) : null };
}

/** The flushes between two readings `seconds` apart. */
export function diskWaits(before: Flushes, after: Flushes, seconds: number): DiskWaits {
  const count = after.count - before.count;
  const ms = after.ms - before.ms;
  return {
    perSec: count / seconds,
    meanMs: count > 0 ? ms / count : 0,
    busy: ms / 1000 / seconds,
    maxMs: after.maxMs,
  };
}
