import type { LRUCache } from 'lru-cache';
import type { Clock } from '../util/clock.ts';
import { entryLru } from '../util/entry-lru.ts';
import type { RedisL2 } from './redis-l2.ts';

/** The outcome of a version bump. */
export interface Bump {
  version: number;
  /** The version known here before the bump, if any. */
  previous: number | undefined;
  /** Whether no other write of the scope came between `previous` and `version`. */
  contiguous: boolean;
}

interface Known {
  version: number;
  /** When Redis last confirmed it (or this instance set it). */
  confirmedAt: number;
}

/** Most scopes whose bumps are replayed to Redis after it comes back. */
const MAX_PENDING = 100_000;

/**
 * The version of each scope (a tenant's user): part of every cache entry, bumped by every
 * write. An entry is served only while its version is current, so a fill that read the store
 * before a write can never pass for data after it.
 *
 * Versions start at a time-derived base (epoch ms × 1000), so a version recreated after Redis
 * lost it is larger than any earlier one. With Redis, a local copy is trusted for `trustMs`
 * (the bus normally updates it at once); after that, if Redis cannot confirm it, the version
 * is unknown and the cache is bypassed: a lost bus can make reads stale for at most `trustMs`.
 */
export class Versions {
  readonly #l2: RedisL2 | null;
  readonly #clock: Clock;
  readonly #trustMs: number;
  readonly #known: LRUCache<string, Known>;
  // Bumps Redis missed while unreachable: replayed when it is back, else other instances would
  // keep trusting entries from before those writes.
  readonly #pending = new Set<string>();

  /**
   * Whether the bus is delivering now (connected, answering its heartbeat): local versions are
   * then kept current by it and need no confirmation from Redis.
   */
  busHealthy: () => boolean = () => false;

  constructor(l2: RedisL2 | null, clock: Clock, trustMs: number, maxScopes = 500_000) {
    this.#l2 = l2;
    this.#clock = clock;
    this.#trustMs = trustMs;
    this.#known = entryLru(maxScopes);
  }

  #base(): number {
    return this.#clock.now() * 1000;
  }

  #trusted(known: Known, now: number): boolean {
    return now - known.confirmedAt < this.#trustMs || this.busHealthy();
  }

  /** The scope's version when it is known and trusted now, without waiting; else undefined. */
  peek(scope: string): number | undefined {
    const known = this.#known.get(scope);
    if (!known) return undefined;
    if (!this.#l2 || this.#trusted(known, this.#clock.now())) return known.version;
    return undefined;
  }

  /** The scope's current version, or null when it cannot be known now (cache bypass). */
  async current(scope: string): Promise<number | null> {
    const now = this.#clock.now();
    const known = this.#known.get(scope);
    if (!this.#l2) {
      if (known) return known.version;
      const version = this.#base();
      this.#known.set(scope, { version, confirmedAt: now });
      return version;
    }
    if (known && this.#trusted(known, now)) return known.version;
    const remote = await this.#l2.version(scope, this.#base());
    if (remote === null) return null;
    // A newer version may have come over the bus while Redis answered (another connection):
    // never go back below it.
    const latest = this.#known.get(scope);
    const version = Math.max(remote, known?.version ?? 0, latest?.version ?? 0);
    this.#known.set(scope, { version, confirmedAt: now });
    return version;
  }

  // The bump of each scope in progress, which the next one of the scope follows.
  readonly #bumping = new Map<string, Promise<Bump>>();

  /** Moves the scope to a new version after a write; returns it. */
  async bump(scope: string): Promise<number> {
    return (await this.bumpFrom(scope)).version;
  }

  /**
   * {@link bump}, also telling which version it moved from and whether the move was contiguous:
   * no other write of the scope (here or elsewhere) came between the two versions. State
   * derived from the previous version and this write alone is then exactly the new version's.
   */
  bumpFrom(scope: string): Promise<Bump> {
    // One bump of a scope at a time in this process: concurrent writes of one user (the
    // busiest users write most) each read the version the previous one set, so each is seen
    // contiguous. Overlapping, the second read the version before the first's and looked
    // non-contiguous, which dropped the user's held index: a rebuild of the biggest indexes
    // under every burst of writes (PostgreSQL + Redis mix: 320 → 1,050 req/s with the index
    // updated before the announcement, cache-stack.ts).
    const previous = this.#bumping.get(scope);
    const run = previous
      ? previous.then(
          () => this.#bumpNow(scope),
          () => this.#bumpNow(scope),
        )
      : this.#bumpNow(scope);
    this.#bumping.set(scope, run);
    const forget = () => {
      if (this.#bumping.get(scope) === run) this.#bumping.delete(scope);
    };
    run.then(forget, forget);
    return run;
  }

  async #bumpNow(scope: string): Promise<Bump> {
    const now = this.#clock.now();
    const known = this.#known.get(scope);
    const local = Math.max((known?.version ?? this.#base()) + 1, this.#base());
    const remote = this.#l2 ? await this.#l2.bump(scope, this.#base()) : null;
    if (this.#l2 && remote === null) {
      if (this.#pending.size < MAX_PENDING) this.#pending.add(scope);
    }
    const latest = this.#known.get(scope); // may have moved on (bus) during the bump
    const version = Math.max(remote ?? local, known ? known.version + 1 : 0, latest?.version ?? 0);
    this.#known.set(scope, { version, confirmedAt: now });
    // With Redis, versions are one counter for every instance: +1 means no write came between.
    // Without it, this process is the only writer, and the known version had not moved.
    const contiguous =
      known !== undefined &&
      latest?.version === known.version &&
      (this.#l2 ? remote === known.version + 1 && version === remote : true);
    return { version, previous: known?.version, contiguous };
  }

  /** A version announced by another instance: taken when newer. */
  apply(scope: string, version: number): void {
    const known = this.#known.get(scope);
    if (!known || known.version < version) {
      this.#known.set(scope, { version, confirmedAt: this.#clock.now() });
    }
  }

  /** Replays bumps that Redis missed; returns the scopes replayed (to announce them). */
  async replayPending(): Promise<Array<{ scope: string; version: number }>> {
    if (!this.#l2) return [];
    const done: Array<{ scope: string; version: number }> = [];
    for (const scope of [...this.#pending]) {
      const version = await this.#l2.bump(scope, this.#base());
      if (version === null) break;
      this.#pending.delete(scope);
      this.apply(scope, version);
      done.push({ scope, version });
    }
    return done;
  }

  /** Forgets every local version (they are re-read from Redis). */
  clear(): void {
    this.#known.clear();
  }

  /** Whether a bump of this scope still waits to be written to Redis (and announced). */
  isPending(scope: string): boolean {
    return this.#pending.has(scope);
  }

  get pending(): number {
    return this.#pending.size;
  }
}
