import { LRUCache } from 'lru-cache';
import type { CacheEntry } from './cache-entry.ts';
import type { CacheCounters } from './cache-stats.ts';

// Per-entry bookkeeping beyond the body: key, header fields, LRU node.
const ENTRY_OVERHEAD = 160;

/** Whether the buffer is the whole of its memory. */
function ownsMemory(body: Buffer): boolean {
  return body.byteOffset === 0 && body.buffer.byteLength === body.byteLength;
}

/** The bytes in memory of their own (not from the pool). */
function copyOf(body: Buffer): Buffer {
  const own = Buffer.allocUnsafeSlow(body.byteLength);
  body.copy(own);
  return own;
}

/**
 * The in-process tier: an LRU bounded by bytes (body, key and overhead), not by entries.
 * Entries live for TTL + grace so that a stale copy can be served while the store is down;
 * whether an entry is fresh is decided by the stack from `storedAt`.
 */
export class L1Cache {
  readonly #lru: LRUCache<string, CacheEntry>;
  readonly #counters: CacheCounters;

  constructor(maxBytes: number, lifetimeMs: number, counters: CacheCounters) {
    this.#counters = counters;
    this.#lru = new LRUCache<string, CacheEntry>({
      maxSize: maxBytes,
      sizeCalculation: (entry, key) => entry.body.length + key.length * 2 + ENTRY_OVERHEAD,
      ttl: lifetimeMs,
      ttlAutopurge: false,
      updateAgeOnGet: false,
      dispose: (_entry, _key, reason) => {
        if (reason === 'evict') counters.l1Evictions++;
      },
    });
  }

  get(key: string): CacheEntry | undefined {
    return this.#lru.get(key);
  }

  /**
   * Stores an entry unless a newer version is already held under the key. A body that is a
   * view of a larger buffer is copied to memory of its own first: `Buffer.from` of a short
   * string slices Node's 8 KiB pool and a Redis reply can be a slice of a socket read, and a
   * kept slice pins all of it (in a soak, 261 MB of live array buffers with 134 MB of indexes
   * and 16 MB of L1 bodies).
   */
  set(key: string, entry: CacheEntry): void {
    const held = this.#lru.peek(key);
    if (held && held.version > entry.version) return;
    this.#lru.set(key, ownsMemory(entry.body) ? entry : { ...entry, body: copyOf(entry.body) });
    this.#counters.l1Bytes = this.#lru.calculatedSize;
  }

  delete(key: string): void {
    this.#lru.delete(key);
    this.#counters.l1Bytes = this.#lru.calculatedSize;
  }

  clear(): void {
    this.#lru.clear();
    this.#counters.l1Bytes = 0;
  }

  get size(): number {
    return this.#lru.size;
  }

  get bytes(): number {
    return this.#lru.calculatedSize;
  }
}
