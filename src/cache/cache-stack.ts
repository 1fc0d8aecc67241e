import { isStoreUnavailable } from '../store/store.ts';
import type { Clock } from '../util/clock.ts';
import { type CacheEntry, etagOf } from './cache-entry.ts';
import type { CacheCounters } from './cache-stats.ts';
import type { InvalidationBus } from './invalidation-bus.ts';
import type { L1Cache } from './l1-cache.ts';
import type { RedisL2 } from './redis-l2.ts';
import { SingleFlight } from './single-flight.ts';
import type { Bump, Versions } from './versions.ts';

/** What a cached value depends on (`scope`, a user) and where it is kept (`key`). */
export interface CacheKey {
  scope: string;
  key: string;
}

/** A value loaded from the store, serialized. */
export interface Loaded {
  body: Buffer;
  /** The earliest moment the value stops being true by itself (an expiry it holds), or 0. */
  validUntil?: number;
}

/** Where an answer came from. `stale`: the store failed and a copy within grace was used. */
export type CacheSource = 'l1' | 'l2' | 'store' | 'stale';

/** A cached answer. */
export interface Served {
  entry: CacheEntry;
  source: CacheSource;
}

/** Timing of the stack. */
export interface CacheStackOptions {
  /** How long an entry is fresh (±10% jitter so that entries filled together expire apart). */
  ttlMs: number;
  /** How long after that a copy may still be served when the store fails. */
  graceMs: number;
}

/**
 * The read path: L1 (in process) → L2 (Redis) → store, each entry stamped with the version of
 * its scope. One load per key at a time; when the store fails, the newest copy within the grace
 * window is served instead. Writes bump the scope's version and publish it.
 */
export class CacheStack {
  readonly counters: CacheCounters;
  readonly #l1: L1Cache;
  readonly #l2: RedisL2 | null;
  readonly #versions: Versions;
  readonly #bus: InvalidationBus | null;
  readonly #clock: Clock;
  readonly #options: CacheStackOptions;
  readonly #flights = new SingleFlight<CacheEntry>();

  constructor(parts: {
    l1: L1Cache;
    l2: RedisL2 | null;
    versions: Versions;
    bus: InvalidationBus | null;
    clock: Clock;
    counters: CacheCounters;
    options: CacheStackOptions;
  }) {
    this.#l1 = parts.l1;
    this.#l2 = parts.l2;
    this.#versions = parts.versions;
    this.#bus = parts.bus;
    this.#clock = parts.clock;
    this.counters = parts.counters;
    this.#options = parts.options;
  }

  #fresh(entry: CacheEntry | null | undefined, version: number, now: number): boolean {
    return (
      !!entry &&
      entry.version === version &&
      entry.freshUntil > now &&
      (entry.validUntil === 0 || entry.validUntil > now)
    );
  }

  #withinGrace(entry: CacheEntry | null | undefined, now: number): entry is CacheEntry {
    return (
      !!entry &&
      now <= entry.freshUntil + this.#options.graceMs &&
      (entry.validUntil === 0 || entry.validUntil > now)
    );
  }

  /**
   * A fresh L1 answer for `k` when the scope's version is known locally, without waiting (the
   * hot path: no promise); undefined when {@link get} must run.
   */
  peek(k: CacheKey): Served | undefined {
    const version = this.#versions.peek(k.scope);
    if (version === undefined) return undefined;
    const entry = this.#l1.get(k.key);
    if (!entry || !this.#fresh(entry, version, this.#clock.now())) return undefined;
    this.counters.l1Hits++;
    return { entry, source: 'l1' };
  }

  /** The value of `k`, from the first tier that holds it fresh, else from `load`. */
  async get(k: CacheKey, load: () => Promise<Loaded>): Promise<Served> {
    const now = this.#clock.now();
    const version = await this.#versions.current(k.scope);
    const inL1 = this.#l1.get(k.key);
    if (version !== null && this.#fresh(inL1, version, now)) {
      this.counters.l1Hits++;
      return { entry: inL1 as CacheEntry, source: 'l1' };
    }
    this.counters.l1Misses++;
    let inL2: CacheEntry | null = null;
    if (version !== null && this.#l2) {
      inL2 = await this.#l2.get(k.key);
      if (this.#fresh(inL2, version, now)) {
        this.counters.l2Hits++;
        this.#l1.set(k.key, inL2 as CacheEntry);
        return { entry: inL2 as CacheEntry, source: 'l2' };
      }
      this.counters.l2Misses++;
    }
    const flight = this.#flights.run(`${k.key}@${version}`, () => this.#fill(k, version, load));
    if (flight.joined) this.counters.fillsJoined++;
    try {
      return { entry: await flight.promise, source: 'store' };
    } catch (err) {
      if (!isStoreUnavailable(err)) throw err;
      if (!inL2 && this.#l2 && version === null) inL2 = await this.#l2.get(k.key);
      const stale = [inL1, inL2]
        .filter((e) => this.#withinGrace(e, now))
        .sort((a, b) => (b?.storedAt ?? 0) - (a?.storedAt ?? 0))[0];
      if (!stale) throw err;
      this.counters.staleServes++;
      return { entry: stale, source: 'stale' };
    }
  }

  async #fill(
    k: CacheKey,
    version: number | null,
    load: () => Promise<Loaded>,
  ): Promise<CacheEntry> {
    // The version was read before the load: if a write lands meanwhile, this entry is already
    // outdated and will never be served under the newer version.
    const loaded = await load();
    const storedAt = this.#clock.now();
    const jitter = 0.9 + Math.random() * 0.2;
    const entry: CacheEntry = {
      body: loaded.body,
      etag: etagOf(loaded.body),
      version: version ?? -1,
      storedAt,
      freshUntil: storedAt + this.#options.ttlMs * jitter,
      validUntil: loaded.validUntil ?? 0,
    };
    this.counters.fills++;
    if (version !== null) {
      this.#l1.set(k.key, entry);
      this.#l2?.set(k.key, entry, this.#options.ttlMs * jitter + this.#options.graceMs);
    }
    return entry;
  }

  /**
   * After a committed write: moves each scope to a new version and tells other instances.
   * `bumped` runs for each scope as soon as its version moved (derived state such as search
   * indexes follows it there); returns every scope's bump once the announcements are out.
   */
  async invalidate(
    scopes: Iterable<string>,
    bumped?: (scope: string, bump: Bump) => void,
  ): Promise<Map<string, Bump>> {
    const bumps = new Map<string, Bump>();
    await Promise.all(
      [...new Set(scopes)].map(async (scope) => {
        const bump = await this.#versions.bumpFrom(scope);
        bumps.set(scope, bump);
        this.counters.invalidations++;
        // What this process holds follows the new version at once, before the announcement's
        // round trip: a search in between saw the new version and an index without the write,
        // and rebuilt it.
        bumped?.(scope, bump);
        // When Redis missed the bump, publishing would wait out a second timeout; the bump is
        // replayed and announced once Redis is back.
        if (!this.#versions.isPending(scope)) await this.#bus?.publish(scope, bump.version);
      }),
    );
    return bumps;
  }

  /** The scope's version when known and trusted without waiting (see {@link Versions.peek}). */
  peekVersion(scope: string): number | undefined {
    return this.#versions.peek(scope);
  }

  /** The scope's current version, or null when it cannot be known now. */
  version(scope: string): Promise<number | null> {
    return this.#versions.current(scope);
  }

  /** A version announced by another instance. */
  applyRemote(scope: string, version: number): void {
    this.counters.busReceived++;
    this.#versions.apply(scope, version);
  }

  /** Forgets everything held in this process (after the bus lost messages). */
  clearLocal(): void {
    this.#l1.clear();
    this.#versions.clear();
  }
}
