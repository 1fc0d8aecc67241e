import { LRUCache } from 'lru-cache';

/**
 * An LRU of at most `entries` entries whose memory grows with what it holds. lru-cache's `max`
 * allocates its arrays for `max` entries up front (≈ 28 B each: with the bounds used here, ≈ 50
 * MB of a fresh server's heap before any entry); counted through `maxSize` instead, at one per
 * entry, they grow as entries come.
 */
export function entryLru<K extends {}, V extends {}>(
  entries: number,
  options: Omit<LRUCache.Options<K, V, unknown>, 'max' | 'maxSize' | 'sizeCalculation'> = {},
): LRUCache<K, V> {
  return new LRUCache<K, V>({ ...options, maxSize: entries, sizeCalculation: () => 1 });
}
