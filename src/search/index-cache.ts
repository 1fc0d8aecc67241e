import { LRUCache } from 'lru-cache';
import type { Bump } from '../cache/versions.ts';
import type { MemoryRow } from '../memory/memory-types.ts';
import { entryLru } from '../util/entry-lru.ts';
import type { UserIndex } from './user-index.ts';

/** Counters of the index cache (for stats and tests). */
export interface IndexCacheCounters {
  hits: number;
  /** Indexes built and kept, whatever asked for them. */
  builds: number;
  /** Of those, built for a session start (a cold user small enough: the preload's build). */
  startBuilds: number;
  /** Of those, built ahead of a session's first search (a larger cold user, in the background). */
  warmBuilds: number;
  /** Writes applied to a held index in place. */
  updates: number;
  /** Indexes dropped because a write could not be applied in place. */
  drops: number;
  /** Writes made during a build, replayed onto the index it built. */
  replayed: number;
  /** Builds refused by admission (the index would push out those of busier users). */
  refused: number;
  /** Refused indexes of small users built for one search and not kept. */
  transient: number;
}

/**
 * What asked for an index build: a search, a session start (the preload of a cold user small
 * enough) or the warm-up ahead of a session's first search.
 */
export type BuildCause = 'search' | 'start' | 'warm';

/** Wants counted between two halvings of every count (so that old popularity fades). */
const AGING_EVERY = 10_000;
/**
 * Estimated bytes per memory before any index was built (then the held indexes' average):
 * 380–510 B for indexes built from the soak's LoCoMo data, ids included.
 */
export const DEFAULT_BYTES_PER_MEMORY = 450;

/**
 * The per-user search indexes held in process: an LRU bounded by their estimated bytes, each
 * stamped with the user's cache version. A write applies its rows to the held index when the
 * version moved by exactly that write; otherwise the index is dropped and rebuilt on use.
 */
export class IndexCache {
  readonly counters: IndexCacheCounters = {
    hits: 0,
    builds: 0,
    startBuilds: 0,
    warmBuilds: 0,
    updates: 0,
    drops: 0,
    replayed: 0,
    refused: 0,
    transient: 0,
  };
  readonly #lru: LRUCache<string, UserIndex> | null;
  // Users with more memories than an index may hold, by the version that was counted.
  readonly #large = entryLru<string, number>(100_000);
  // How often each user's index was wanted lately (searches, session starts): the admission's
  // frequencies, halved every AGING_EVERY wants.
  #wanted = new Map<string, number>();
  #wants = 0;
  // Bytes per memory of the indexes built lately (a moving average), for estimates.
  #bytesPerMemory = DEFAULT_BYTES_PER_MEMORY;

  constructor(maxBytes: number) {
    this.#lru =
      maxBytes > 0
        ? new LRUCache({
            maxSize: maxBytes,
            sizeCalculation: (i) => Math.max(1, i.bytes),
            // Pushed out, or replaced by a newer build: retired. Not on 'delete': afterWrite
            // deletes and sets the same index again to take its new size.
            dispose: (index, _scope, reason) => {
              if (reason === 'evict' || reason === 'set') index.retire();
            },
          })
        : null;
  }

  /** Notes that a search or a session start of `scope` wanted its index. */
  want(scope: string): void {
    this.#wanted.set(scope, (this.#wanted.get(scope) ?? 0) + 1);
    if (++this.#wants < AGING_EVERY) return;
    this.#wants = 0;
    const aged = new Map<string, number>();
    for (const [key, n] of this.#wanted) if (n > 1) aged.set(key, n >> 1);
    this.#wanted = aged;
  }

  /** Estimated bytes of an index of `memories` memories (recent builds' bytes per memory). */
  estimate(memories: number): number {
    return memories * this.#bytesPerMemory;
  }

  /**
   * Whether an index of about `bytes` for `scope` should be built and held: when it fits in the
   * free space, or (unless `mayEvict` is false) when its user was wanted more often lately than
   * every user whose index it would push out (frequency-based admission, as in TinyLFU). A
   * plain LRU let a crowd of rarely seen users evict the busiest users' indexes, which were
   * then rebuilt all the time.
   */
  admits(scope: string, bytes: number, mayEvict = true): boolean {
    if (!this.#lru) return true;
    if (bytes > this.#lru.maxSize) return false;
    let free = this.#lru.maxSize - this.#lru.calculatedSize;
    if (bytes <= free) return true;
    if (!mayEvict) {
      this.counters.refused++;
      return false;
    }
    const wanted = this.#wanted.get(scope) ?? 0;
    // Least recently used first: the ones the LRU would evict.
    for (const key of this.#lru.rkeys()) {
      if (key === scope) continue;
      if ((this.#wanted.get(key) ?? 0) >= wanted) break;
      free += Math.max(1, this.#lru.peek(key)?.bytes ?? 0);
      if (bytes <= free) return true;
    }
    this.counters.refused++;
    return false;
  }

  /** The index of `scope` if it reflects `version`. */
  get(scope: string, version: number): UserIndex | undefined {
    const index = this.#lru?.get(scope);
    if (index?.version !== version) return undefined;
    this.counters.hits++;
    return index;
  }

  /** Holds a newly built index; `cause` is what asked for the build (for the counters). */
  set(scope: string, index: UserIndex, cause: BuildCause = 'search'): void {
    this.counters.builds++;
    if (cause === 'start') this.counters.startBuilds++;
    else if (cause === 'warm') this.counters.warmBuilds++;
    if (index.docCount > 0) {
      // Weighted by size: a big index says more about bytes per memory than a tiny one.
      const weight = Math.min(1, index.docCount / 1_000);
      this.#bytesPerMemory += weight * 0.2 * (index.bytes / index.docCount - this.#bytesPerMemory);
    }
    this.#lru?.set(scope, index);
  }

  /** Whether the user was found too large to index at this version. */
  isLarge(scope: string, version: number): boolean {
    return this.#large.get(scope) === version;
  }

  markLarge(scope: string, version: number): void {
    this.#large.set(scope, version);
  }

  /** After a committed write of these rows (all of one user): update in place, or drop. */
  afterWrite(scope: string, rows: MemoryRow[], bump: Bump | undefined): void {
    const index = this.#lru?.peek(scope);
    if (!index) return;
    if (!bump?.contiguous || bump.previous !== index.version || rows.length === 0) {
      index.retire();
      this.#lru?.delete(scope);
      this.counters.drops++;
      return;
    }
    for (const row of rows) index.upsert(row);
    index.version = bump.version;
    this.counters.updates++;
    // Its size changed. lru-cache takes a new size only with a new value: set again, the same
    // index kept its first size, and the held indexes outgrew the budget (1.7× in a soak).
    this.#lru?.delete(scope);
    this.#lru?.set(scope, index);
  }

  /** Indexes held and their estimated bytes. */
  get stats(): { indexes: number; bytes: number; largeUsers: number } {
    return {
      indexes: this.#lru?.size ?? 0,
      bytes: this.#lru?.calculatedSize ?? 0,
      largeUsers: this.#large.size,
    };
  }
}
