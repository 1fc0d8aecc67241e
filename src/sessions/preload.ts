import type { MemoryRow } from '../memory/memory-types.ts';
import { rank, rankOptions } from '../search/ranker.ts';
import type { SearchService } from '../search/search-service.ts';
import { tokenize } from '../search/tokenizer.ts';
import { TopK } from '../search/top-k.ts';
import type { UserIndex } from '../search/user-index.ts';
import type { Store } from '../store/store.ts';

/** Why a memory is in a preload bundle. */
export type PreloadReason = 'previous-summary' | 'pinned' | 'relevant' | 'important' | 'recent';

/** One memory of a bundle with every reason it was chosen for. */
export interface PreloadItem {
  row: MemoryRow;
  reasons: PreloadReason[];
}

/** What a session starts with, cut to its budget. */
export interface PreloadBundle {
  items: PreloadItem[];
  /** The budget in characters of memory content, and what the items use of it. */
  budgetChars: number;
  usedChars: number;
  /** Whether chosen memories were left out for the budget. */
  truncated: boolean;
  /**
   * `index`: from the user's held in-process index; `built`: from their index, built for this
   * start (a cold user small enough); `store`: from store queries (a cold, larger user).
   */
  source: 'index' | 'built' | 'store';
  /** Time taken to build the bundle, in ms. */
  ms: number;
}

/** The candidates of each kind, best first. */
interface Candidates {
  summary: MemoryRow | null;
  pinned: MemoryRow[];
  relevant: MemoryRow[];
  important: MemoryRow[];
  recent: MemoryRow[];
}

/** Memories taken per kind before the budget cut. */
export const PRELOAD_LIMITS = { pinned: 20, relevant: 10, important: 10, recent: 10 };

/** Characters per token, for budgets given in (approximate) tokens. */
export const CHARS_PER_TOKEN = 4;

/**
 * Merges the candidates in priority order (previous summary, pinned, relevant, important,
 * recent), one item per memory with all its reasons, and keeps those that fit the budget in
 * that order (a memory too large for what is left is skipped; smaller ones may still fit).
 */
export function assemble(c: Candidates, budgetChars: number): Omit<PreloadBundle, 'source' | 'ms'> {
  const byId = new Map<string, PreloadItem>();
  const ordered: PreloadItem[] = [];
  const add = (rows: MemoryRow[], reason: PreloadReason): void => {
    for (const row of rows) {
      const held = byId.get(row.id);
      if (held) {
        if (!held.reasons.includes(reason)) held.reasons.push(reason);
        continue;
      }
      const item = { row, reasons: [reason] };
      byId.set(row.id, item);
      ordered.push(item);
    }
  };
  add(c.summary ? [c.summary] : [], 'previous-summary');
  add(c.pinned, 'pinned');
  add(c.relevant, 'relevant');
  add(c.important, 'important');
  add(c.recent, 'recent');
  const items: PreloadItem[] = [];
  let used = 0;
  let truncated = false;
  for (const item of ordered) {
    const size = item.row.content.length;
    if (used + size > budgetChars) {
      truncated = true;
      continue;
    }
    used += size;
    items.push(item);
  }
  return { items, budgetChars, usedChars: used, truncated };
}

/**
 * One pass over the index's live rows (a big user's are many: one read of each, not three):
 * the newest summary, and the most important and the newest memories.
 */
function scan(index: UserIndex, now: number): Pick<Candidates, 'summary' | 'important' | 'recent'> {
  let summary = -1;
  const important = new TopK(PRELOAD_LIMITS.important);
  const recent = new TopK(PRELOAD_LIMITS.recent);
  // Read from the index's columns: a memory is built as a row only when it is chosen. Newest
  // slots first: most later offers to `recent` then fall below its k-th and leave the heap
  // alone (oldest first, every offer entered it: a sift per memory of a big user). TopK breaks
  // ties by slot, so the order does not change what is chosen.
  for (let s = index.slots - 1; s >= 0; s--) {
    if (!index.isLive(s) || index.expired(s, now)) continue;
    if (index.kind(s) === 'summary' && (summary < 0 || index.id(s) > index.id(summary))) {
      summary = s;
    }
    important.offer(s, index.importance(s));
    recent.offer(s, index.createdAt(s));
  }
  const rows = (top: TopK) => top.sorted().map((t) => index.row(t.slot) as MemoryRow);
  return { summary: index.row(summary), important: rows(important), recent: rows(recent) };
}

/** The candidates from a held index: no store access. */
function fromIndex(index: UserIndex, context: string, now: number, halfLifeMs: number): Candidates {
  // Chosen by the columns, newest first; only the chosen are built as rows.
  const pinned = [...index.pinned]
    .filter((s) => index.isLive(s) && !index.expired(s, now))
    .sort((a, b) => (index.id(a) < index.id(b) ? 1 : -1))
    .slice(0, PRELOAD_LIMITS.pinned)
    .map((s) => index.row(s) as MemoryRow);
  const terms = context ? tokenize(context).map((t) => t.term) : [];
  const relevant =
    terms.length === 0
      ? []
      : rank(index, terms, rankOptions(now, halfLifeMs, { k: PRELOAD_LIMITS.relevant }))
          .filter((r) => r.text > 0)
          .map((r) => r.row);
  return { pinned, relevant, ...scan(index, now) };
}

/** The candidates from the store, in parallel queries (the user's index is not held). */
async function fromStore(
  store: Store,
  tenant: string,
  userId: string,
  context: string,
  now: number,
): Promise<Candidates> {
  const words = context ? [...new Set(tokenize(context).map((t) => t.word))] : [];
  const [summaries, pinned, relevant, important, recent] = await Promise.all([
    store.listMemories(tenant, { userId, kind: 'summary', limit: 1, now }),
    store.listMemories(tenant, { userId, pinned: true, limit: PRELOAD_LIMITS.pinned, now }),
    words.length === 0
      ? Promise.resolve([])
      : store.searchText(tenant, userId, words, PRELOAD_LIMITS.relevant, now),
    store.topByImportance(tenant, userId, PRELOAD_LIMITS.important, now),
    store.listMemories(tenant, { userId, limit: PRELOAD_LIMITS.recent, now }),
  ]);
  return {
    summary: summaries[0] ?? null,
    pinned,
    relevant: relevant.map((c) => c.row),
    important,
    recent,
  };
}

/**
 * Builds a session's preload bundle: from the user's index when it is held (no store access,
 * sub-millisecond); for a cold user, from their index built now when they are small, else from
 * store queries run in parallel while the index is built in the background, so the session's
 * first search finds it.
 */
export class Preloader {
  readonly #store: Store;
  readonly #search: SearchService;
  readonly #halfLifeMs: number;
  readonly #buildMax: number;
  readonly #onWarmError: (err: unknown) => void;

  constructor(
    store: Store,
    search: SearchService,
    halfLifeMs: number,
    /**
     * Cold users with at most this many memories get their index built for the start, rather
     * than the store's queries: a build that small costs less than a full-text query (which
     * reads every user's postings of the words), and the session's searches need it anyway.
     * 0: never.
     */
    buildMax: number,
    onWarmError: (err: unknown) => void,
  ) {
    this.#store = store;
    this.#search = search;
    this.#halfLifeMs = halfLifeMs;
    this.#buildMax = buildMax;
    this.#onWarmError = onWarmError;
  }

  async bundle(
    tenant: string,
    userId: string,
    context: string,
    budgetChars: number,
    now: number,
  ): Promise<PreloadBundle> {
    const started = performance.now();
    this.#search.want(tenant, userId);
    const held = this.#search.peekIndex(tenant, userId);
    if (held) {
      const bundle = assemble(fromIndex(held, context, now, this.#halfLifeMs), budgetChars);
      return Object.assign(bundle, { source: 'index' as const, ms: performance.now() - started });
    }
    if (this.#buildMax > 0) {
      // Built only when the user has at most buildMax memories (one count, in the build).
      const index = await this.#search.indexOf(tenant, userId, this.#buildMax, 'start');
      if (index) {
        const bundle = assemble(fromIndex(index, context, now, this.#halfLifeMs), budgetChars);
        return Object.assign(bundle, { source: 'built' as const, ms: performance.now() - started });
      }
    }
    const candidates = await fromStore(this.#store, tenant, userId, context, now);
    const bundle = assemble(candidates, budgetChars);
    const ms = performance.now() - started;
    // Warm the index now, off the answer's path: the first search joins or finds it.
    this.#search.indexOf(tenant, userId, Number.POSITIVE_INFINITY, 'warm').catch(this.#onWarmError);
    return Object.assign(bundle, { source: 'store' as const, ms });
  }
}
