import type { WriteStats } from './sqlite-writes.ts';

/** The board's slots, in order. */
const SLOTS = [
  'waitCount',
  'waitMs',
  'flushCount',
  'flushMs',
  'flushMaxMs',
  'checkpointing',
  'checkpoints',
  'frames',
  'checkpointMaxMs',
  'checkpointFailed',
] as const;
const at = Object.fromEntries(SLOTS.map((name, i) => [name, i])) as Record<
  (typeof SLOTS)[number],
  number
>;

/**
 * The writer thread's counters in memory shared with the store's thread: the writer publishes
 * them after each call it answers, and `GET /v1/stats/store` reads them without a message.
 * Each slot is written by one thread only; a reader may see one call's counters half-updated,
 * which a monitoring read tolerates.
 */
export class WriteStatsBoard {
  readonly buffer: SharedArrayBuffer;
  readonly #view: Float64Array;

  /** @param buffer the board's memory (the writer's side gets the store's). */
  constructor(buffer = new SharedArrayBuffer(SLOTS.length * Float64Array.BYTES_PER_ELEMENT)) {
    this.buffer = buffer;
    this.#view = new Float64Array(buffer);
  }

  publish(stats: WriteStats): void {
    const v = this.#view;
    v[at.waitCount] = stats.walWaits.count;
    v[at.waitMs] = stats.walWaits.ms;
    v[at.flushCount] = stats.walFlushes.count;
    v[at.flushMs] = stats.walFlushes.ms;
    v[at.flushMaxMs] = stats.walFlushes.maxMs;
    const c = stats.checkpoints;
    v[at.checkpointing] = c ? 1 : 0;
    v[at.checkpoints] = c?.count ?? 0;
    v[at.frames] = c?.frames ?? 0;
    v[at.checkpointMaxMs] = c?.maxMs ?? 0;
    v[at.checkpointFailed] = c?.failed ? 1 : 0;
  }

  read(): WriteStats {
    const v = this.#view;
    const slot = (name: keyof typeof at): number => v[at[name]] ?? 0;
    return {
      walWaits: { count: slot('waitCount'), ms: slot('waitMs') },
      walFlushes: { count: slot('flushCount'), ms: slot('flushMs'), maxMs: slot('flushMaxMs') },
      checkpoints:
        slot('checkpointing') === 1
          ? {
              count: slot('checkpoints'),
              frames: slot('frames'),
              maxMs: slot('checkpointMaxMs'),
              failed: slot('checkpointFailed') === 1,
            }
          : null,
    };
  }
}
