import { LRUCache } from 'lru-cache';
import type { Bump } from '../cache/versions.ts';
import type { MemoryRow } from '../memory/memory-types.ts';
import type { UserIndex } from './user-index.ts';

/** Counters of the index cache (for stats and tests). */
export interface IndexCacheCounters {
  hits: number;
  builds: number;
  /** Writes applied to a held index in place. */
  updates: number;
  /** Indexes dropped because a write could not be applied in place. */
  drops: number;
  /** Writes made during a build, replayed onto the index it built. */
  replayed: number;
}

/**
 * The per-user search indexes held in process: an LRU bounded by their estimated bytes, each
 * stamped with the user's cache version. A write applies its rows to the held index when the
 * version moved by exactly that write; otherwise the index is dropped and rebuilt on use.
 */
export class IndexCache {
  readonly counters: IndexCacheCounters = {
    hits: 0,
    builds: 0,
    updates: 0,
    drops: 0,
    replayed: 0,
  };
  readonly #lru: LRUCache<string, UserIndex> | null;
  // Users with more memories than an index may hold, by the version that was counted.
  readonly #large = new LRUCache<string, number>({ max: 100_000 });

  constructor(maxBytes: number) {
    this.#lru =
      maxBytes > 0
        ? new LRUCache({ maxSize: maxBytes, sizeCalculation: (i) => Math.max(1, i.bytes) })
        : null;
  }

  /** The index of `scope` if it reflects `version`. */
  get(scope: string, version: number): UserIndex | undefined {
    const index = this.#lru?.get(scope);
    if (index?.version !== version) return undefined;
    this.counters.hits++;
    return index;
  }

  set(scope: string, index: UserIndex): void {
    this.counters.builds++;
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
      this.#lru?.delete(scope);
      this.counters.drops++;
      return;
    }
    for (const row of rows) index.upsert(row);
    index.version = bump.version;
    this.counters.updates++;
    this.#lru?.set(scope, index); // its size changed
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
