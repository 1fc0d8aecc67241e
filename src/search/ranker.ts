import type { MemoryRow } from '../memory/memory-types.ts';
import {
  DEFAULT_WEIGHTS,
  type FusionMethod,
  fuseRrf,
  fuseWeighted,
  SIGNALS,
  type SignalName,
  type Weights,
} from './fusion.ts';
import { passes, passesAt, type SearchFilter } from './search-filter.ts';
import { type Bm25Params, idf, importance, pinned, recency, similarity, usage } from './signals.ts';
import { entrySlot, entryTf } from './term-postings.ts';
import { TopK } from './top-k.ts';
import type { Scratch, UserIndex } from './user-index.ts';
import { cosine } from './vector.ts';

/** How to rank. */
export interface RankOptions {
  /** Results wanted. */
  k: number;
  filter: SearchFilter;
  weights: Weights;
  fusion: FusionMethod;
  now: number;
  halfLifeMs: number;
  bm25: Bm25Params;
  /**
   * Share of a message's text score given to its neighbours in the same session (0: none): a
   * reply is found through the question it answers, and the other way round.
   */
  context: number;
  /**
   * Coordination: a memory's BM25 is multiplied by (share of query terms it holds)^coordination
   * (0: plain BM25), favouring memories that hold more of the query.
   */
  coordination: number;
  /** Embedding of the query, when vectors are in use. */
  queryVector: Float32Array | null;
  explain: boolean;
}

/** The settings of text relevance. */
export type TextRanking = Pick<RankOptions, 'bm25' | 'context' | 'coordination'>;

/**
 * The text settings chosen on the LoCoMo development split (`npm run eval -- locomo`): BM25
 * with little length normalization (memories are short), coordination 1, and a third of a
 * message's score given to its session neighbours.
 */
export const DEFAULT_TEXT_RANKING: TextRanking = {
  bm25: { k1: 0.9, b: 0.3 },
  context: 0.3,
  coordination: 1,
};

/**
 * Ranking options with the defaults (k 10, no filter, default weights and text settings,
 * weighted fusion, no vector, no explain) for a ranking at `now`, changed by `over`.
 */
export function rankOptions(
  now: number,
  halfLifeMs: number,
  over: Partial<RankOptions> = {},
): RankOptions {
  // Object.assign rather than a literal of spreads (`{ ...defaults, k: 10, ...over }`), the
  // same copy: Node 20's V8 takes a slow path for a spread that follows other properties,
  // ≈ 6 µs per call against ≈ 0.1 µs, once per search and per preload.
  return Object.assign(
    {
      k: 10,
      filter: {},
      weights: DEFAULT_WEIGHTS,
      fusion: 'weighted' as const,
      queryVector: null,
      explain: false,
    },
    DEFAULT_TEXT_RANKING,
    over,
    { now, halfLifeMs },
  );
}

/** One signal of one result: its value (0..1), its weight and what it added to the score. */
export interface SignalExplanation {
  value: number;
  weight: number;
  contribution: number;
}

/** Why a memory ranked where it did. */
export interface Explanation {
  signals: Record<SignalName, SignalExplanation>;
  /** Query terms (stems) found in the memory itself. */
  matchedTerms: string[];
  /** BM25 of the memory's own text, and what its session neighbours gave it. */
  bm25: number;
  context: number;
}

/** A ranked memory. */
export interface Ranked {
  row: MemoryRow;
  score: number;
  /** The text signal (0..1): 0 for a memory that matched no query term, nor a neighbour's. */
  text: number;
  explain?: Explanation;
}

/** What the signals other than text read of a memory. */
type SignalSource = Pick<
  MemoryRow,
  'createdAt' | 'lastAccessedAt' | 'importance' | 'pinned' | 'accessCount' | 'embedding'
>;

/** The signal inputs of the memory in an index slot. */
function sourceAt(index: UserIndex, slot: number): SignalSource {
  const lastAccessedAt = index.lastAccessedAt(slot);
  return {
    createdAt: index.createdAt(slot),
    lastAccessedAt: Number.isNaN(lastAccessedAt) ? null : lastAccessedAt,
    importance: index.importance(slot),
    pinned: index.isPinned(slot),
    accessCount: index.accessCount(slot),
    embedding: index.embedding(slot),
  };
}

/** The value of every signal of a candidate (text already normalized). */
function signalValues(row: SignalSource, text: number, o: RankOptions): Record<SignalName, number> {
  return {
    text,
    vector:
      o.queryVector !== null && row.embedding !== null
        ? similarity(cosine(o.queryVector, row.embedding))
        : 0,
    recency: recency(row.createdAt, row.lastAccessedAt, o.now, o.halfLifeMs),
    importance: importance(row.importance),
    pinned: pinned(row.pinned),
    use: usage(row.accessCount),
  };
}

const LN2 = Math.LN2;

/**
 * Weighted sum of the signals of the memory in `slot`: `fuseWeighted(signalValues(…))` inlined
 * for the hot loop, read from the index's columns (no objects, no allocation). The explain
 * output checks the two agree (its contributions add up to the score:
 * test/integration/search-api.test.ts).
 */
function weightedScore(index: UserIndex, slot: number, text: number, o: RankOptions): number {
  const w = o.weights;
  let score = w.text * text + w.importance * importance(index.importance(slot));
  if (w.recency !== 0) {
    const created = index.createdAt(slot);
    const accessed = index.lastAccessedAt(slot);
    // Not Math.max: a NaN (never accessed) must give the creation time.
    let last = created;
    if (accessed > created) last = accessed;
    const age = o.now - last;
    // Same as signals.recency, inlined: exp is cheaper than a power here.
    score += w.recency * (age <= 0 ? 1 : Math.exp((-age * LN2) / o.halfLifeMs));
  }
  if (index.isPinned(slot)) score += w.pinned;
  const accesses = index.accessCount(slot);
  if (w.use !== 0 && accesses > 0) score += w.use * usage(accesses);
  if (w.vector !== 0 && o.queryVector !== null) {
    const embedding = index.embedding(slot);
    if (embedding !== null) score += w.vector * similarity(cosine(o.queryVector, embedding));
  }
  return score;
}

/**
 * BM25 of the query terms over the index, into `scores` (by slot), with matched-term counts;
 * lists the slots that scored in `sc.touched` and returns how many. Emptied slots are skipped.
 *
 * Terms are scored rarest first, and `ends` gets, per term held, the length of `sc.touched`
 * after it: the slots first listed by a term match it and no rarer one (the rarer-terms path
 * of {@link rank} sets the commonest terms' slots aside by these segments).
 */
function scoreText(
  index: UserIndex,
  terms: string[],
  o: RankOptions,
  sc: Scratch,
  ends: number[],
): number {
  const { scores, counts, touched } = sc;
  let n = 0;
  const docs = index.docCount;
  const avg = index.averageLength;
  const { k1, b } = o.bm25;
  const postings = index.postings;
  const entries = postings.entries;
  const held: number[] = [];
  for (const term of terms) {
    const p = postings.find(term);
    if (p >= 0 && postings.df(p) > 0) held.push(p);
  }
  if (held.length > 1) held.sort((x, y) => postings.df(x) - postings.df(y));
  for (const p of held) {
    const df = postings.df(p);
    const w = idf(df, docs) * (k1 + 1);
    const start = postings.start(p);
    const end = start + postings.length(p);
    for (let i = start; i < end; i++) {
      const entry = entries[i] as number;
      const slot = entrySlot(entry);
      const length = index.length(slot);
      if (length === 0) continue;
      const before = scores[slot] as number;
      if (before === 0) touched[n++] = slot;
      const tf = entryTf(entry);
      // bm25Term, inlined.
      scores[slot] = before + (w * tf) / (tf + k1 * (1 - b + (b * length) / avg));
      counts[slot] = (counts[slot] as number) + 1;
    }
    ends.push(n);
  }
  if (o.coordination !== 0 && terms.length > 1) {
    for (let i = 0; i < n; i++) {
      const slot = touched[i] as number;
      const share = (counts[slot] as number) / terms.length;
      scores[slot] = (scores[slot] as number) * share ** o.coordination;
    }
  }
  return n;
}

/** Messages on each side of a match that receive context, and the fall-off per step away. */
const CONTEXT_WINDOW = 2;
const CONTEXT_FALLOFF = 0.5;

/**
 * Gives the session neighbours of the `touched` matched messages (up to
 * {@link CONTEXT_WINDOW} on each side, halving per step) a share of their score, into
 * `context`; lists the neighbours that had no score of their own in `sc.near` and returns how
 * many.
 */
function spreadContext(index: UserIndex, touched: number, sc: Scratch, share: number): number {
  let added = 0;
  for (let i = 0; i < touched; i++) {
    const slot = sc.touched[i] as number;
    const first = share * (sc.scores[slot] as number);
    // Both directions: the earlier messages first, then the later ones.
    added = give(index, false, slot, first, sc, added);
    added = give(index, true, slot, first, sc, added);
  }
  return added;
}

/**
 * Gives the neighbours of `slot` on one side their context share of `first`; returns the
 * length of `sc.near` after the ones it added.
 */
function give(
  index: UserIndex,
  later: boolean,
  slot: number,
  first: number,
  sc: Scratch,
  added: number,
): number {
  const { scores, context } = sc;
  let n = added;
  let gift = first;
  let near = later ? index.next(slot) : index.prev(slot);
  for (let d = 0; d < CONTEXT_WINDOW && near >= 0; d++, gift *= CONTEXT_FALLOFF) {
    if (context[near] === 0 && scores[near] === 0) sc.near[n++] = near;
    context[near] = (context[near] as number) + gift;
    near = later ? index.next(near) : index.prev(near);
  }
  return n;
}

/** Whether the filter has no condition (then only liveness is checked). */
function isEmpty(f: SearchFilter): boolean {
  // Field by field: cheaper than enumerating the object's keys on every query.
  return (
    f.kind === undefined &&
    f.tags === undefined &&
    f.agentId === undefined &&
    f.sessionId === undefined &&
    f.pinned === undefined &&
    f.createdFrom === undefined &&
    f.createdTo === undefined &&
    f.updatedFrom === undefined &&
    f.updatedTo === undefined
  );
}

/** Whether the memory in slot `s` is a candidate: live, unexpired, and passing the filter. */
function admitted(index: UserIndex, s: number, open: boolean, o: RankOptions): boolean {
  // Without a filter, and without expiring memories, only liveness is read (most candidates
  // are not kept).
  if (open) return index.isLive(s) && !(index.expiring > 0 && index.expired(s, o.now));
  return passesAt(index, s, o.filter, o.now);
}

/** The distinct terms of a query, in order (queries are short: a scan beats a Set). */
function distinct(terms: string[]): string[] {
  const out: string[] = [];
  for (const t of terms) if (!out.includes(t)) out.push(t);
  return out;
}

/**
 * Ranks a user's memories for a query (its terms, stemmed as the index is). Text relevance is
 * BM25 with coordination, spread to session neighbours by `context`, normalized by the best
 * candidate; it is fused with recency, importance, pinned, use and optionally vector
 * similarity.
 *
 * Candidates are the memories matching a term (and their neighbours), pinned memories, and —
 * without terms, or with a query vector — every memory. When fewer than `k` pass the filters,
 * the rest are ranked by their other signals to fill the answer.
 */
export function rank(index: UserIndex, queryTerms: string[], o: RankOptions): Ranked[] {
  const terms = queryTerms.length > 1 ? distinct(queryTerms) : queryTerms;
  const sc = index.scratch();
  const { scores, context } = sc;
  const ends: number[] = [];
  const touched = terms.length > 0 ? scoreText(index, terms, o, sc, ends) : 0;
  // Slots listed in `sc.near`: given context (or, on the rarer-terms path, candidates).
  let near = 0;
  try {
    const everyone = terms.length === 0 || (o.queryVector !== null && o.weights.vector !== 0);
    const open = isEmpty(o.filter);
    if (!everyone && o.fusion === 'weighted' && ends.length > 1) {
      const rarer = byRarerTerms(index, sc, touched, ends, open, o);
      near = rarer.listed;
      if (rarer.best !== null) return answer(index, rarer.best, terms, rarer.scale, sc, o);
    }
    near = o.context > 0 && touched > 0 ? spreadContext(index, touched, sc, o.context) : 0;
    // Candidates: every live memory, or the matched, their neighbours and the pinned ones;
    // each with its text score (own and context, not yet normalized) in `texts`, in one pass.
    const { kept, texts } = sc;
    let count = 0;
    // (No closure for the three loops' common step: its captured counters made small ranks
    // slower.)
    if (everyone) {
      for (let s = 0; s < index.slots; s++) {
        if (!admitted(index, s, open, o)) continue;
        kept[count] = s;
        texts[count++] = (scores[s] as number) + (context[s] as number);
      }
    } else {
      for (let i = 0; i < touched; i++) {
        const s = sc.touched[i] as number;
        if (!admitted(index, s, open, o)) continue;
        kept[count] = s;
        texts[count++] = (scores[s] as number) + (context[s] as number);
      }
      for (let i = 0; i < near; i++) {
        const s = sc.near[i] as number;
        if (!admitted(index, s, open, o)) continue;
        kept[count] = s;
        texts[count++] = context[s] as number;
      }
      for (const s of index.pinned) {
        if (scores[s] !== 0 || context[s] !== 0 || !admitted(index, s, open, o)) continue;
        kept[count] = s;
        texts[count++] = 0;
      }
    }
    let maxText = 0;
    for (let i = 0; i < count; i++)
      if ((texts[i] as number) > maxText) maxText = texts[i] as number;
    const scale = maxText === 0 ? 0 : 1 / maxText;

    let best: Array<{ slot: number; score: number }>;
    if (o.fusion === 'rrf') {
      const slots = Array.from(kept.subarray(0, count));
      best = fuseRrf(
        slots.map((s) => signalValues(sourceAt(index, s), textOf(sc, s, scale), o)),
        o.weights,
      )
        .map((score, i) => ({ slot: slots[i] as number, score }))
        .sort((a, b) => b.score - a.score || b.slot - a.slot)
        .slice(0, o.k);
    } else {
      best = weightedBest(index, kept, texts, count, scale, o);
    }
    if (best.length < o.k && !everyone) best = fill(index, best, sc, o);
    return answer(index, best, terms, scale, sc, o);
  } finally {
    if (touched + near > index.slots >> 3) {
      // Most of a big user's memories were touched: zeroing whole arrays is cheaper than
      // visiting the touched slots one by one.
      scores.fill(0, 0, index.slots);
      sc.counts.fill(0, 0, index.slots);
      context.fill(0, 0, index.slots);
    } else {
      for (let i = 0; i < touched; i++) {
        const s = sc.touched[i] as number;
        scores[s] = 0;
        sc.counts[s] = 0;
        context[s] = 0;
      }
      for (let i = 0; i < near; i++) context[sc.near[i] as number] = 0;
    }
  }
}

/** The ranked memories of the `best` slots. */
function answer(
  index: UserIndex,
  best: Array<{ slot: number; score: number }>,
  terms: string[],
  scale: number,
  sc: Scratch,
  o: RankOptions,
): Ranked[] {
  return best.map(({ slot, score }) => {
    const row = index.row(slot) as MemoryRow;
    const text = textOf(sc, slot, scale);
    if (!o.explain) return { row, score, text };
    return { row, score, text, explain: explainOne(index, slot, terms, text, sc, o) };
  });
}

/**
 * The most a memory's session neighbours give it, in units of the best own score among them:
 * a share of each neighbour's, up to {@link CONTEXT_WINDOW} on each side, halving per step.
 */
const CONTEXT_REACH = 2 * ((1 - CONTEXT_FALLOFF ** CONTEXT_WINDOW) / (1 - CONTEXT_FALLOFF));

/**
 * The commonest terms are set aside when the memories matching only them (with their
 * neighbours' context at most) score at most this share of the best own text score.
 */
const SET_ASIDE_SHARE = 0.2;

/**
 * Rankings answered by {@link byRarerTerms} since the process started: a test checks that its
 * properties reach that path, which small random indexes rarely take.
 */
export const rankCounts = { rarerTerms: 0 };

/** The context a slot's session neighbours give it (what {@link spreadContext} adds up). */
function pulledContext(
  index: UserIndex,
  slot: number,
  scores: Float64Array,
  share: number,
): number {
  let sum = 0;
  let gift = share;
  let before = index.prev(slot);
  let after = index.next(slot);
  for (let d = 0; d < CONTEXT_WINDOW && (before >= 0 || after >= 0); d++, gift *= CONTEXT_FALLOFF) {
    if (before >= 0) {
      sum += gift * (scores[before] as number);
      before = index.prev(before);
    }
    if (after >= 0) {
      sum += gift * (scores[after] as number);
      after = index.next(after);
    }
  }
  return sum;
}

/** Lists `slot` in `sc.near` at `listed` unless it is marked listed; returns the new length. */
function listOnce(sc: Scratch, slot: number, listed: number): number {
  if (sc.marks[slot] !== 0) return listed;
  sc.marks[slot] = 1;
  sc.near[listed] = slot;
  return listed + 1;
}

/**
 * Weighted fusion's top k without the memories that match only the query's commonest terms,
 * when bounds show none of them can enter it: the answer is then the same as ranking every
 * candidate. A question naming a person ("what did John …") matches a third of a big LoCoMo
 * user's memories through the name alone; each of those, with its session neighbours, would
 * otherwise be a candidate to give context to, list and offer.
 *
 * The slots listed by the rarer terms (their first segments in `sc.touched`, see
 * {@link scoreText}), their session neighbours within {@link CONTEXT_WINDOW} and the pinned
 * memories are the candidates, each with its context pulled from its neighbours. Any other
 * memory matches only the set-aside terms, as do its neighbours within the window, so its text
 * is at most `bound` = (their best own score) × (1 + context × {@link CONTEXT_REACH}). When
 * `bound` is at most the candidates' best text (the normalization is then the same) and it,
 * with the other signals at their most, stays below the k-th best score, the candidates' top k
 * is the answer. Otherwise `best` is null and the caller ranks every candidate; the slots
 * listed (in `sc.near`, `listed` of them) have their context set back to 0.
 */
function byRarerTerms(
  index: UserIndex,
  sc: Scratch,
  touched: number,
  ends: number[],
  open: boolean,
  o: RankOptions,
): { best: Array<{ slot: number; score: number }> | null; scale: number; listed: number } {
  const none = { best: null, scale: 0, listed: 0 };
  const { scores, context, marks, kept, texts } = sc;
  // The best own score of each term's segment, then from each segment to the last.
  const tail = new Float64Array(ends.length + 1);
  let from = 0;
  for (let j = 0; j < ends.length; j++) {
    const end = ends[j] as number;
    let most = 0;
    for (let i = from; i < end; i++) {
      const v = scores[sc.touched[i] as number] as number;
      if (v > most) most = v;
    }
    tail[j] = most;
    from = end;
  }
  for (let j = ends.length - 2; j >= 0; j--) {
    tail[j] = Math.max(tail[j] as number, tail[j + 1] as number);
  }
  const reach = 1 + o.context * CONTEXT_REACH;
  const best = tail[0] as number;
  // The fewest rarer terms whose set-aside rest is low enough, and leaves most slots aside.
  let split = 1;
  while (split < ends.length && (tail[split] as number) * reach > SET_ASIDE_SHARE * best) split++;
  const rare = ends[split - 1] as number;
  if (split === ends.length || rare > touched >> 1) return none;

  // Candidates: the rarer terms' slots, their neighbours, the pinned; each listed once.
  let listed = 0;
  // Without context, neighbours are not candidates.
  const window = o.context > 0 ? CONTEXT_WINDOW : 0;
  for (let i = 0; i < rare; i++) {
    const s = sc.touched[i] as number;
    listed = listOnce(sc, s, listed);
    for (let d = 0, b = index.prev(s); d < window && b >= 0; d++, b = index.prev(b)) {
      listed = listOnce(sc, b, listed);
    }
    for (let d = 0, a = index.next(s); d < window && a >= 0; d++, a = index.next(a)) {
      listed = listOnce(sc, a, listed);
    }
  }
  for (const s of index.pinned) listed = listOnce(sc, s, listed);
  let count = 0;
  let maxText = 0;
  for (let i = 0; i < listed; i++) {
    const s = sc.near[i] as number;
    marks[s] = 0;
    if (!admitted(index, s, open, o)) continue;
    const given = o.context > 0 ? pulledContext(index, s, scores, o.context) : 0;
    context[s] = given;
    const text = (scores[s] as number) + given;
    if (text > maxText) maxText = text;
    kept[count] = s;
    texts[count++] = text;
  }
  const bound = (tail[split] as number) * reach;
  if (count >= o.k && maxText > 0 && bound <= maxText) {
    const scale = 1 / maxText;
    const top = weightedBest(index, kept, texts, count, scale, o);
    const floor = top[o.k - 1]?.score ?? Number.NEGATIVE_INFINITY;
    if (Math.max(0, o.weights.text) * bound * scale + othersBound(index, o) + BOUND_SLACK < floor) {
      rankCounts.rarerTerms++;
      return { best: top, scale, listed };
    }
  }
  for (let i = 0; i < listed; i++) context[sc.near[i] as number] = 0;
  return { ...none, listed };
}

/**
 * The most the signals other than text can add to an unpinned memory: recency is at most 1,
 * importance and use at most those of the index's bounds, vector similarity at most 1.
 */
function othersBound(index: UserIndex, o: RankOptions): number {
  const w = o.weights;
  return (
    Math.max(0, w.recency) +
    Math.max(0, w.importance) * importance(index.mostImportance) +
    Math.max(0, w.use) * usage(index.mostAccesses) +
    (o.queryVector !== null ? Math.max(0, w.vector) : 0)
  );
}

/** Above this much, a candidate's bound is below the bar (float sums may differ by an ulp). */
const BOUND_SLACK = 1e-9;

/**
 * The k best of `kept` by weighted fusion, the same as scoring every candidate. A candidate's
 * score is at most its text part plus each other signal at its most: once k are held, one
 * whose bound is below the k-th best cannot enter, and its memory is not read (most of a big
 * user's candidates match one common word of the query). The k best by text alone are scored
 * first, so that the bar is high from the start.
 */
function weightedBest(
  index: UserIndex,
  kept: Int32Array,
  texts: Float64Array,
  count: number,
  scale: number,
  o: RankOptions,
): Array<{ slot: number; score: number }> {
  const top = new TopK(o.k);
  if (count <= 2 * o.k) {
    // Few candidates (a small user's): scoring them all is cheaper than the bounds' upkeep.
    for (let i = 0; i < count; i++) {
      const s = kept[i] as number;
      top.offer(s, weightedScore(index, s, (texts[i] as number) * scale, o));
    }
    return top.sorted();
  }
  const w = o.weights;
  const others = othersBound(index, o);
  // A pinned memory may add the pinned weight on top.
  const pinnedBonus = index.pinned.size > 0 ? Math.max(0, w.pinned) : 0;
  const byText = new TopK(o.k);
  // By position in `kept`: the text score not normalized orders the candidates as well.
  for (let i = 0; i < count; i++) byText.offer(i, texts[i] as number);
  const seeds = byText.sorted().map((e) => e.slot);
  for (const i of seeds) {
    const s = kept[i] as number;
    top.offer(s, weightedScore(index, s, (texts[i] as number) * scale, o));
  }
  // The bar moves only when a candidate is offered.
  let bar = top.floor() - others - BOUND_SLACK;
  for (let i = 0; i < count; i++) {
    const text = (texts[i] as number) * scale;
    const s = kept[i] as number;
    const part = w.text * text;
    if (part < bar && !(part >= bar - pinnedBonus && index.isPinned(s))) continue;
    if (seeds.includes(i)) continue;
    top.offer(s, weightedScore(index, s, text, o));
    bar = top.floor() - others - BOUND_SLACK;
  }
  return top.sorted();
}

/** Normalized text score of a slot. */
function textOf(sc: Scratch, slot: number, scale: number): number {
  return ((sc.scores[slot] as number) + (sc.context[slot] as number)) * scale;
}

/** Adds the best memories that were not candidates, ranked by their other signals. */
function fill(
  index: UserIndex,
  best: Array<{ slot: number; score: number }>,
  sc: Scratch,
  o: RankOptions,
): Array<{ slot: number; score: number }> {
  const top = new TopK(o.k - best.length);
  const open = isEmpty(o.filter);
  for (let s = 0; s < index.slots; s++) {
    // Candidates (matched, given context, or pinned) were ranked already.
    if (sc.scores[s] !== 0 || sc.context[s] !== 0 || index.isPinned(s)) continue;
    if (open) {
      if (!index.isLive(s) || index.expired(s, o.now)) continue;
    } else if (!passesAt(index, s, o.filter, o.now)) continue;
    top.offer(s, weightedScore(index, s, 0, o));
  }
  // A memory without a matching term ranks after every memory with one.
  let floor = Number.POSITIVE_INFINITY;
  for (const b of best) if (b.score < floor) floor = b.score;
  return best.concat(top.sorted().map((t) => ({ slot: t.slot, score: Math.min(t.score, floor) })));
}

function explainOne(
  index: UserIndex,
  slot: number,
  terms: string[],
  text: number,
  sc: Scratch,
  o: RankOptions,
): Explanation {
  const matched = terms.filter((t) => index.holds(t, slot));
  const bm25 = sc.scores[slot] as number;
  return explanation(sourceAt(index, slot), text, matched, bm25, sc.context[slot] as number, o);
}

function explanation(
  row: SignalSource,
  text: number,
  matchedTerms: string[],
  bm25: number,
  context: number,
  o: RankOptions,
): Explanation {
  const values = signalValues(row, text, o);
  const signals = {} as Record<SignalName, SignalExplanation>;
  for (const name of SIGNALS) {
    const weight = o.weights[name];
    signals[name] = { value: values[name], weight, contribution: values[name] * weight };
  }
  return { signals, matchedTerms, bm25, context };
}

/**
 * Ranks candidates that come with a text score of their own (the store's full-text rank, for
 * users too large to index): the score is normalized and fused like BM25's.
 */
export function rankScored(
  candidates: Array<{ row: MemoryRow; score: number }>,
  o: RankOptions,
): Ranked[] {
  const kept = candidates.filter((c) => passes(c.row, o.filter, o.now));
  let maxText = 0;
  for (const c of kept) if (c.score > maxText) maxText = c.score;
  const scale = maxText === 0 ? 0 : 1 / maxText;
  let scores: number[];
  if (o.fusion === 'rrf') {
    scores = fuseRrf(
      kept.map((c) => signalValues(c.row, c.score * scale, o)),
      o.weights,
    );
  } else {
    scores = kept.map((c) => fuseWeighted(signalValues(c.row, c.score * scale, o), o.weights));
  }
  const top = new TopK(o.k);
  scores.forEach((score, i) => {
    top.offer(i, score);
  });
  return top.sorted().map(({ slot, score }) => {
    const c = kept[slot] as { row: MemoryRow; score: number };
    const text = c.score * scale;
    if (!o.explain) return { row: c.row, score, text };
    return { row: c.row, score, text, explain: explanation(c.row, text, [], c.score, 0, o) };
  });
}
