import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  ConsecutiveBreaker,
  circuitBreaker,
  handleAll,
} from 'cockatiel';
import type { Redis } from 'ioredis';
import { type CacheEntry, decodeEntry, encodeEntry } from './cache-entry.ts';
import type { CacheCounters } from './cache-stats.ts';
import { withDeadline } from './deadline.ts';

const PREFIX = 'engram:';

// Creates a missing version at `base` (time-derived, so larger than any earlier one even after
// Redis lost the key), and returns it; BUMP increments it. Versions live a week untouched.
const GET_VERSION = `
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
  v = redis.call('GET', KEYS[1])
end
return v`;
const BUMP_VERSION = `
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
local v = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return v`;
const VERSION_LIFETIME_MS = 7 * 86_400_000;

/**
 * The Redis tier: cached entries and the per-scope versions, behind a circuit breaker. Every
 * failure (an error, or no answer within the deadline) is answered as a miss (or null) at once:
 * the caller falls back to L1 and the store, and after 5 consecutive failures Redis is not
 * asked for 2 s at all.
 */
export class RedisL2 {
  readonly #redis: Redis;
  readonly #counters: CacheCounters;
  readonly #breaker: CircuitBreakerPolicy;
  readonly #deadlineMs: number;

  /** @param deadlineMs each command's deadline (`withDeadline`: a stalled loop is no failure) */
  constructor(redis: Redis, counters: CacheCounters, deadlineMs: number) {
    this.#redis = redis;
    this.#counters = counters;
    this.#deadlineMs = deadlineMs;
    this.#breaker = circuitBreaker(handleAll, {
      halfOpenAfter: 2_000,
      breaker: new ConsecutiveBreaker(5),
    });
  }

  /** The Redis client (the bus publishes through it). */
  get client(): Redis {
    return this.#redis;
  }

  async #attempt<T>(op: () => Promise<T>): Promise<T | null> {
    if (this.#redis.status !== 'ready') {
      this.#counters.l2Errors++;
      return null;
    }
    try {
      return await this.#breaker.execute(() => withDeadline(op(), this.#deadlineMs));
    } catch (err) {
      this.#counters.l2Errors++;
      if (!(err instanceof BrokenCircuitError)) return null;
      return null;
    }
  }

  /** The entry under `key`, or null on a miss or any failure. */
  async get(key: string): Promise<CacheEntry | null> {
    const bytes = await this.#attempt(() => this.#redis.getBuffer(PREFIX + key));
    return bytes ? decodeEntry(bytes) : null;
  }

  /** Stores an entry for `ttlMs`; failures are counted, never thrown. */
  set(key: string, entry: CacheEntry, ttlMs: number): void {
    void this.#attempt(() =>
      this.#redis.set(PREFIX + key, encodeEntry(entry), 'PX', Math.max(1, Math.round(ttlMs))),
    );
  }

  /** The current version of a scope (created at `base` if missing), or null on failure. */
  async version(scope: string, base: number): Promise<number | null> {
    const v = await this.#attempt(
      () =>
        this.#redis.eval(
          GET_VERSION,
          1,
          `${PREFIX}v:${scope}`,
          base,
          VERSION_LIFETIME_MS,
        ) as Promise<string | number>,
    );
    return v === null ? null : Number(v);
  }

  /** Increments a scope's version; the new version, or null on failure. */
  async bump(scope: string, base: number): Promise<number | null> {
    const v = await this.#attempt(
      () =>
        this.#redis.eval(
          BUMP_VERSION,
          1,
          `${PREFIX}v:${scope}`,
          base,
          VERSION_LIFETIME_MS,
        ) as Promise<string | number>,
    );
    return v === null ? null : Number(v);
  }
}
