/** Counters of the cache stack, read by the metrics layer. Monotonic except `l1Bytes`. */
export interface CacheCounters {
  l1Hits: number;
  l1Misses: number;
  l2Hits: number;
  l2Misses: number;
  /** L2 operations that failed or were skipped because its circuit was open. */
  l2Errors: number;
  /** Loads from the store that filled the cache. */
  fills: number;
  /** Callers that joined a load already in flight instead of starting one. */
  fillsJoined: number;
  /** Answers served stale because the store failed, within the grace window. */
  staleServes: number;
  l1Evictions: number;
  /** Bytes held by L1 now. */
  l1Bytes: number;
  /** Scope versions bumped by writes of this instance. */
  invalidations: number;
  /** Invalidation messages received from other instances. */
  busReceived: number;
  /** Times L1 was cleared because the bus connection came back. */
  busReconnectClears: number;
  /** Entries loaded ahead of use by warming. */
  warmed: number;
  /** Warm reads answered before the framework (a subset of l1Hits). */
  fastPath: number;
}

/** A fresh set of counters at zero. */
export function newCounters(): CacheCounters {
  return {
    l1Hits: 0,
    l1Misses: 0,
    l2Hits: 0,
    l2Misses: 0,
    l2Errors: 0,
    fills: 0,
    fillsJoined: 0,
    staleServes: 0,
    l1Evictions: 0,
    l1Bytes: 0,
    invalidations: 0,
    busReceived: 0,
    busReconnectClears: 0,
    warmed: 0,
    fastPath: 0,
  };
}
