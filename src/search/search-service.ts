import type { ActivityTracker } from '../activity/activity-tracker.ts';
import { userScope } from '../cache/cache-keys.ts';
import type { CacheStack } from '../cache/cache-stack.ts';
import { SingleFlight } from '../cache/single-flight.ts';
import type { Bump } from '../cache/versions.ts';
import type { MemoryRow } from '../memory/memory-types.ts';
import type { Store } from '../store/store.ts';
import type { Clock } from '../util/clock.ts';
import { yieldToLoop } from '../util/yield.ts';
import type { AccessRecorder } from './access-recorder.ts';
import { answeredRows } from './answered-rows.ts';
import type { Embedder } from './embedder.ts';
import { DEFAULT_WEIGHTS, type FusionMethod, type Weights } from './fusion.ts';
import type { BuildCause, IndexCache } from './index-cache.ts';
import { type Ranked, rank, rankOptions, rankScored, type TextRanking } from './ranker.ts';
import type { SearchFilter } from './search-filter.ts';
import { tokenize } from './tokenizer.ts';
import { UserIndex } from './user-index.ts';

/** One search. */
export interface SearchRequest {
  query: string;
  /** Results wanted (1..100). */
  k: number;
  filter: SearchFilter;
  /** Weights of the signals, over the defaults. */
  weights?: Partial<Weights> | undefined;
  fusion?: FusionMethod | undefined;
  explain: boolean;
  /** Count the results as accesses of the memories (default true). */
  recordAccess?: boolean | undefined;
  /** Text settings over {@link DEFAULT_TEXT_RANKING} (for evaluations; not in the HTTP API). */
  textRanking?: Partial<TextRanking> | undefined;
}

/** The answer of a search. */
export interface SearchResult {
  items: Ranked[];
  /** The query's terms as matched (stems). */
  terms: string[];
  fusion: FusionMethod;
  weights: Weights;
  /** `index`: ranked over the user's in-process index; `fulltext`: the store's candidates. */
  source: 'index' | 'fulltext';
  /** Whether vector similarity took part. */
  vector: boolean;
  /** How the index was found: held (`hit`), built by this search, or none (full text). */
  index: 'hit' | 'built' | 'fulltext';
}

/** Settings of the search service. */
export interface SearchOptions {
  halfLifeMs: number;
  /** Users with more live memories are searched through the store's full-text index. */
  indexMaxMemories: number;
  /** Candidates read from the full-text index for such users. */
  ftsCandidates: number;
}

/**
 * Rows read per step while building an index: ≈ 2 ms of the event loop per step (≈ 15 µs a
 * row, read and indexed), so that the requests due meanwhile wait that long at most.
 */
const BUILD_CHUNK = 128;

/**
 * Users with at most this many live memories whose index the cache refuses are ranked over an
 * index built for the one search and not kept, rather than through the store's full-text index:
 * reading and indexing their rows (≈ 12 µs a row) costs less than an SQLite FTS5 query ranked by
 * bm25, which reads every user's postings of the query's words for their document frequencies
 * (≈ 25 ms a query at 1,000,000 memories, whatever the user's size). With a bounded index budget
 * and many users, that is most users: the 1,000,000-memory soak spent 47% of its CPU there.
 */
export const TRANSIENT_MAX_MEMORIES = 500;

/**
 * A search of a user with more live memories than this, whose index is not held, builds it only
 * when it fits in the free space: it pushes no other index out, and is answered from the
 * store's full-text index otherwise (≈ 7 ms on SQLite for a user of 2,000 memories, against
 * ≈ 30 ms to build their index). When more users are in sessions than the budget holds, an
 * index a search built was pushed out by other sessions' builds before that session searched
 * again: in the 1,000,000-memory soak, three builds in four were for searches, and their share
 * of the CPU grew until the server fell behind. Session starts still build and evict (their
 * warm-up, in the background), so a session's searches find its index when the budget holds it.
 */
export const SEARCH_EVICT_MAX_MEMORIES = TRANSIENT_MAX_MEMORIES;

/** Builds a search may join before it gives up on an index fresh enough (full text then). */
const MAX_BUILD_JOINS = 3;

/** A write that landed while its user's index was being built. */
interface LoggedWrite {
  rows: MemoryRow[];
  bump: Bump | undefined;
}

/** A built index, and whether the index cache takes it (else it serves the one search). */
interface Built {
  index: UserIndex;
  keep: boolean;
}

/**
 * Search: ranks a user's memories in process over their index (built on first use, kept in
 * step with writes), or over the store's full-text candidates for users too large to hold.
 * Results count as accesses, written behind.
 */
export class SearchService {
  readonly #store: Store;
  readonly #cache: CacheStack;
  readonly #indexes: IndexCache;
  readonly #access: AccessRecorder;
  readonly #activity: ActivityTracker;
  readonly #embedder: Embedder | null;
  readonly #clock: Clock;
  readonly #options: SearchOptions;
  /** One build per user at a time (a build catches up with the writes made during it). */
  readonly #builds = new SingleFlight<UserIndex | null>();
  /** Writes made during each user's build in progress, replayed onto the index it builds. */
  readonly #duringBuild = new Map<string, LoggedWrite[]>();
  /** Queries whose embedding failed (the search went on without vectors). */
  embedFailures = 0;

  constructor(parts: {
    store: Store;
    cache: CacheStack;
    indexes: IndexCache;
    access: AccessRecorder;
    activity: ActivityTracker;
    embedder: Embedder | null;
    clock: Clock;
    options: SearchOptions;
  }) {
    this.#store = parts.store;
    this.#cache = parts.cache;
    this.#indexes = parts.indexes;
    this.#access = parts.access;
    this.#activity = parts.activity;
    this.#embedder = parts.embedder;
    this.#clock = parts.clock;
    this.#options = parts.options;
  }

  /** Ranks a user's memories for a query. */
  async search(tenant: string, userId: string, req: SearchRequest): Promise<SearchResult> {
    this.#activity.touch(tenant, userId);
    this.want(tenant, userId);
    const tokens = tokenize(req.query);
    const terms = [...new Set(tokens.map((t) => t.term))];
    // Object.assign, not two spreads: Node 20's V8 takes a slow path for a spread after another.
    const weights: Weights = Object.assign({}, DEFAULT_WEIGHTS, req.weights);
    const fusion = req.fusion ?? 'weighted';
    const queryVector = await this.#embedQuery(req.query, weights);
    const held = this.peekIndex(tenant, userId);
    const index = held ?? (await this.indexOf(tenant, userId));
    const now = this.#clock.now();
    const options = rankOptions(now, this.#options.halfLifeMs, {
      ...req.textRanking,
      k: req.k,
      filter: req.filter,
      weights,
      fusion,
      queryVector,
      explain: req.explain,
    });
    let items: Ranked[];
    if (index) {
      items = rank(index, terms, options);
    } else {
      const words = [...new Set(tokens.map((t) => t.word))];
      items = rankScored(await this.#candidates(tenant, userId, words, req.filter, now), options);
    }
    if (req.recordAccess !== false) {
      for (const item of items) {
        index?.touch(item.row.id, now);
        this.#access.record(tenant, item.row.id, now);
      }
    }
    return {
      items,
      terms,
      fusion,
      weights,
      source: index ? 'index' : 'fulltext',
      vector: queryVector !== null,
      index: held ? 'hit' : index ? 'built' : 'fulltext',
    };
  }

  async #embedQuery(query: string, weights: Weights): Promise<Float32Array | null> {
    if (!this.#embedder || weights.vector === 0 || query.trim() === '') return null;
    try {
      return (await this.#embedder.embed([query]))[0] ?? null;
    } catch {
      // Without the embedder the search is lexical plus signals: degraded, not failed.
      this.embedFailures++;
      return null;
    }
  }

  /** Full-text candidates with their store score (newest memories for an empty query). */
  async #candidates(
    tenant: string,
    userId: string,
    words: string[],
    filter: SearchFilter,
    now: number,
  ): Promise<Array<{ row: MemoryRow; score: number }>> {
    const limit = this.#options.ftsCandidates;
    if (words.length > 0) return this.#store.searchText(tenant, userId, words, limit, now);
    const rows = await this.#store.listMemories(tenant, { ...filter, userId, limit, now });
    return rows.map((row) => ({ row, score: 0 }));
  }

  /** The user's index when it is held at their current version, without waiting; else undefined. */
  peekIndex(tenant: string, userId: string): UserIndex | undefined {
    const scope = userScope(tenant, userId);
    const version = this.#cache.peekVersion(scope);
    return version === undefined ? undefined : this.#indexes.get(scope, version);
  }

  /** Counts a search or session start of the user: the index cache admits the most wanted. */
  want(tenant: string, userId: string): void {
    this.#indexes.want(userScope(tenant, userId));
  }

  /**
   * The user's index at their current version (or newer), built when missing, once for
   * concurrent callers; null when the user has too many memories to hold one (or more than
   * `maxMemories`: no build then), when the cache refuses it, or when the builds joined stayed
   * behind the version this search must see.
   */
  async indexOf(
    tenant: string,
    userId: string,
    maxMemories = Number.POSITIVE_INFINITY,
    cause: BuildCause = 'search',
  ): Promise<UserIndex | null> {
    const scope = userScope(tenant, userId);
    const version = this.#cache.peekVersion(scope) ?? (await this.#cache.version(scope));
    if (version !== null) {
      const held = this.#indexes.get(scope, version);
      if (held) return held;
      if (this.#indexes.isLarge(scope, version)) return null;
    }
    for (let attempt = 0; attempt < MAX_BUILD_JOINS; attempt++) {
      const index = await this.#builds.run(scope, () =>
        this.#buildCaughtUp(tenant, userId, scope, version, maxMemories, cause),
      ).promise;
      // A build that started before this search's version counts only if it caught up to it
      // (read-your-writes); else another build, which may again be one already running.
      if (index === null || version === null || index.version >= version) return index;
    }
    return null;
  }

  /**
   * Builds the user's index as of `version`, then replays the writes that landed during the
   * build (their rows, while each bump follows the last), so a user who writes more often than
   * a build takes still gets a current index. Cached unless the version was unknown.
   */
  async #buildCaughtUp(
    tenant: string,
    userId: string,
    scope: string,
    version: number | null,
    maxMemories: number,
    cause: BuildCause,
  ): Promise<UserIndex | null> {
    const log: LoggedWrite[] = [];
    this.#duringBuild.set(scope, log);
    let built: Built | 'large' | 'over' | 'refused';
    try {
      // The version is read before the store: a write landing during the build is in the log.
      built = await this.#build(tenant, userId, scope, version ?? -1, maxMemories, cause);
    } finally {
      this.#duringBuild.delete(scope);
    }
    if (built === 'refused' || built === 'over') return null;
    if (built === 'large') {
      if (version !== null) this.#indexes.markLarge(scope, version);
      return null;
    }
    const { index, keep } = built;
    // An unknown version (Redis unreachable, trust expired) is never cached: rebuilt per use.
    if (version === null || !keep) return index;
    log.sort((a, b) => (a.bump?.version ?? 0) - (b.bump?.version ?? 0));
    for (const { rows, bump } of log) {
      if (!bump) break;
      // Committed before the version was read: already in the export.
      if (bump.version <= version) continue;
      if (!bump.contiguous || bump.previous !== index.version) break;
      for (const row of rows) index.upsert(row);
      index.version = bump.version;
      this.#indexes.counters.replayed++;
    }
    this.#indexes.set(scope, index, cause);
    return index;
  }

  /**
   * The user's index built from the store; `large` past the index limit, `over` past the
   * caller's `maxMemories`, `refused` when the index cache would not hold it and the user has
   * more than {@link TRANSIENT_MAX_MEMORIES} (the search then goes to the store's full-text
   * index). A smaller user's refused index is built for this search only (`keep` false).
   */
  async #build(
    tenant: string,
    userId: string,
    scope: string,
    version: number,
    maxMemories: number,
    cause: BuildCause,
  ): Promise<Built | 'large' | 'over' | 'refused'> {
    const now = this.#clock.now();
    const count = await this.#store.countLiveMemories(tenant, userId, now);
    if (count > this.#options.indexMaxMemories) return 'large';
    if (count > maxMemories) return 'over';
    const mayEvict = cause !== 'search' || count <= SEARCH_EVICT_MAX_MEMORIES;
    const keep = this.#indexes.admits(scope, this.#indexes.estimate(count), mayEvict);
    if (!keep) {
      if (count > TRANSIENT_MAX_MEMORIES) return 'refused';
      this.#indexes.counters.transient++;
    }
    const index = new UserIndex(version, [], count);
    let after: string | null = null;
    for (;;) {
      const chunk = await this.#store.exportMemories(tenant, userId, after, BUILD_CHUNK, now);
      for (const row of chunk) index.upsert(row);
      if (chunk.length < BUILD_CHUNK) {
        if (keep) index.trim();
        return { index, keep };
      }
      after = chunk[chunk.length - 1]?.id ?? null;
      await yieldToLoop();
    }
  }

  /**
   * After a committed write of a user's memories (`rows`, theirs only): the rows go into the
   * held index, or without a bump (the version move unknown) the index is dropped.
   */
  afterWrite(tenant: string, userId: string, rows: MemoryRow[], bump: Bump | undefined): void {
    const scope = userScope(tenant, userId);
    this.#duringBuild.get(scope)?.push({ rows, bump });
    this.#indexes.afterWrite(scope, rows, bump);
  }

  /** After a user's erasure: the rows of theirs that answers built are let go too. */
  forget(tenant: string, userId: string): void {
    answeredRows.forget(tenant, userId);
  }
}
