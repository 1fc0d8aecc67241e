import type { MemoryRow } from '../memory/memory-types.ts';
import { termsOf } from './tokenizer.ts';

/** Bits of a posting entry that hold the term frequency (the rest hold the slot). */
const TF_BITS = 9;
/** Term frequencies are counted up to this (BM25 has long saturated by then). */
const TF_MAX = (1 << TF_BITS) - 1;

/**
 * The documents of one term, packed into one array of small integers: element 0 is the term's
 * document frequency (live memories holding it: emptied slots stay until compaction), then an
 * entry per slot holding it, slots ascending, each `slot << 9 | tf` (read with
 * {@link entrySlot} and {@link entryTf}). One array per term, not an object and two arrays:
 * most terms of a user occur once, and the three objects cost six times the packed array.
 * Slots stay below 2^22 (at most 1,000,000 memories per index, a quarter more slots before
 * compaction), so an entry stays a 31-bit small integer.
 */
export type Posting = number[];

/** The slot of a posting entry. */
export const entrySlot = (entry: number): number => entry >>> TF_BITS;

/** The term frequency of a posting entry. */
export const entryTf = (entry: number): number => entry & TF_MAX;

/** Per-slot working arrays of one ranking. */
export interface Scratch {
  /** BM25 of the memory's own text. */
  scores: Float64Array;
  /** Text score given by session neighbours. */
  context: Float64Array;
  /** Distinct query terms matched. */
  counts: Uint16Array;
}

/** Removed memories whose versions are remembered (the out-of-order guard). */
const MAX_REMOVED = 10_000;

/** Slots freed by removals are compacted away once they are this share of all slots. */
const COMPACT_SHARE = 0.25;

// Estimates of the heap an index takes, fitted (least squares, within 1%) to V8's heap growth
// with 10 to 10,000 indexes of 5 to 10,000 memories each (LoCoMo texts, rows as `toRow` makes
// them): ≈ 800 B per index (maps, sets, arrays), ≈ 125 B per distinct term beyond its
// characters (map entry, packed array), ≈ 12 B per posting entry (with the arrays' growth
// slack), ≈ 225 B per memory (row, id, slot maps and arrays) beyond its content; strings
// counted at 2 B per character (they may be two-byte).
/** Estimated bytes of an empty index. */
const INDEX_BYTES = 800;
/** Estimated bytes of a new term's posting, beyond the term's characters. */
const POSTING_BYTES = 125;
/** Estimated bytes of a posting entry. */
const ENTRY_BYTES = 12;

/** Estimated bytes a memory takes in an index with `distinctTerms` postings entries. */
function docBytes(row: MemoryRow, distinctTerms: number): number {
  return (
    225 + row.content.length * 2 + distinctTerms * ENTRY_BYTES + (row.embedding?.byteLength ?? 0)
  );
}

/** The distinct terms of a memory with their frequencies, in text order. */
function termCounts(row: MemoryRow): { counts: Map<string, number>; length: number } {
  const terms = termsOf(indexedText(row));
  const counts = new Map<string, number>();
  for (const t of terms) counts.set(t, (counts.get(t) ?? 0) + 1);
  return { counts, length: terms.length };
}

/** The text of a memory as it is indexed: content, tags and kind. */
export function indexedText(row: MemoryRow): string {
  return row.tags.length === 0
    ? `${row.content} ${row.kind}`
    : `${row.content} ${row.tags.join(' ')} ${row.kind}`;
}

/** The ranker's working arrays, shared by every index: {@link UserIndex.scratch}. */
let scratch: Scratch = {
  scores: new Float64Array(0),
  context: new Float64Array(0),
  counts: new Uint16Array(0),
};

/**
 * The search index of one user's memories: term statistics (postings, document lengths), the
 * memories themselves (for filters and the non-text signals) and, per session, the memories in
 * order (a message's neighbours give it context). Built once from the store, then kept in step
 * with the user's writes; the stored text is tokenized once, when a memory is added.
 *
 * A memory is held in a slot; removing it empties the slot and leaves its postings, which the
 * ranker skips. Slots are compacted when a quarter of them are empty.
 */
export class UserIndex {
  /** The memory in each slot, or null for an emptied slot. */
  rows: (MemoryRow | null)[] = [];
  /** Indexed terms of each slot (0 for an emptied slot). */
  lengths: number[] = [];
  /** Distinct terms of each slot (0 for an emptied slot): its bytes are given back on removal. */
  #distinct: number[] = [];
  /**
   * One copy of each owner, kind and session string the memories repeat: a store hands every
   * row its own copies, a tenth of a memory's heap.
   */
  #strings = new Map<string, string>();
  /** Slot of each held memory. */
  slotOf = new Map<string, number>();
  postings = new Map<string, Posting>();
  /** Slots of pinned memories: ranked with every query. */
  pinned = new Set<number>();
  /**
   * Per session, the slot of its newest memory; with `before` and `after` (-1: none), a
   * session's memories form a list in id (= creation) order: a message's neighbours.
   */
  sessionTail = new Map<string, number>();
  before: number[] = [];
  after: number[] = [];
  /** Versions of memories removed from the index: an older copy is never added back. */
  readonly #removed = new Map<string, number>();
  /** Held memories that have an expiry (the ranker checks expiry only when there are some). */
  expiring = 0;
  /** Live documents and the sum of their lengths (for BM25's average length). */
  docCount = 0;
  totalLength = 0;
  /** Approximate bytes held (for the byte-bounded cache of indexes). */
  bytes = INDEX_BYTES;
  #empty = 0;
  /** The cache version of the user this index reflects. */
  version: number;

  constructor(version: number, rows: Iterable<MemoryRow> = []) {
    this.version = version;
    for (const row of rows) this.upsert(row);
  }

  /** Number of slots, emptied ones included (the range of slot numbers). */
  get slots(): number {
    return this.rows.length;
  }

  /**
   * Zeroed scratch arrays of at least {@link slots} entries, reused by the ranker. Ranking is
   * synchronous and the ranker zeroes what it used, so one set serves every index (one per
   * index cost 36 B per slot of every held index).
   */
  scratch(): Scratch {
    if (scratch.scores.length < this.rows.length) {
      const size = Math.max(64, this.rows.length * 2);
      scratch = {
        scores: new Float64Array(size),
        context: new Float64Array(size),
        counts: new Uint16Array(size),
      };
    }
    return scratch;
  }

  /** Live memories holding `term` (a stem). */
  df(term: string): number {
    return this.postings.get(term)?.[0] ?? 0;
  }

  /** Whether the memory in `slot` holds `term`. */
  holds(term: string, slot: number): boolean {
    const posting = this.postings.get(term);
    if (!posting) return false;
    for (let i = 1; i < posting.length; i++) {
      if (entrySlot(posting[i] as number) === slot) return true;
    }
    return false;
  }

  /** Average indexed length of a live memory. */
  get averageLength(): number {
    return this.docCount === 0 ? 0 : this.totalLength / this.docCount;
  }

  /**
   * Brings a memory into the index as the store now has it: added, replaced, or removed when
   * deleted. An older version than the one held (or last removed) is ignored, so changes
   * applied out of order cannot go back in time.
   */
  upsert(row: MemoryRow): void {
    const slot = this.slotOf.get(row.id);
    const held = slot === undefined ? undefined : this.rows[slot];
    const known = held?.version ?? this.#removed.get(row.id);
    if (known !== undefined && known > row.version) return;
    if (slot !== undefined) this.#clear(slot);
    if (row.deletedAt !== null) {
      // Bounded: the guard matters only for changes applied moments apart.
      if (this.#removed.size >= MAX_REMOVED) this.#removed.clear();
      this.#removed.set(row.id, row.version);
      return;
    }
    this.#removed.delete(row.id);
    this.#add(row);
  }

  /** Updates the access statistics of a held memory (they are not versioned edits). */
  touch(id: string, at: number): void {
    const slot = this.slotOf.get(id);
    const row = slot === undefined ? null : this.rows[slot];
    if (!row) return;
    row.accessCount += 1;
    if (row.lastAccessedAt === null || row.lastAccessedAt < at) row.lastAccessedAt = at;
  }

  #add(row: MemoryRow): void {
    const slot = this.rows.length;
    const { counts, length } = termCounts(row);
    for (const [term, n] of counts) {
      const entry = slot * (TF_MAX + 1) + Math.min(n, TF_MAX);
      const posting = this.postings.get(term);
      if (posting) {
        posting[0] = (posting[0] as number) + 1;
        posting.push(entry);
      } else {
        // A literal: exactly two elements until a second memory holds the term.
        this.postings.set(term, [1, entry]);
        this.bytes += term.length * 2 + POSTING_BYTES;
      }
    }
    this.#share(row);
    if (row.expiresAt !== null) this.expiring++;
    this.#distinct.push(counts.size);
    this.rows.push(row);
    this.lengths.push(length);
    this.slotOf.set(row.id, slot);
    if (row.pinned) this.pinned.add(slot);
    this.before.push(-1);
    this.after.push(-1);
    if (row.sessionId !== null) this.#joinSession(row.sessionId, slot, row.id);
    this.docCount++;
    this.totalLength += length;
    this.bytes += docBytes(row, counts.size);
  }

  /** Points the row's repeated strings at this index's one copy of each (equal strings). */
  #share(row: MemoryRow): void {
    row.tenant = this.#one(row.tenant);
    row.userId = this.#one(row.userId);
    row.kind = this.#one(row.kind);
    if (row.agentId !== null) row.agentId = this.#one(row.agentId);
    if (row.sessionId !== null) row.sessionId = this.#one(row.sessionId);
  }

  #one(value: string): string {
    const held = this.#strings.get(value);
    if (held !== undefined) return held;
    this.#strings.set(value, value);
    return value;
  }

  #joinSession(sessionId: string, slot: number, id: string): void {
    const tail = this.sessionTail.get(sessionId);
    if (tail === undefined) {
      this.sessionTail.set(sessionId, slot);
      return;
    }
    // Usually the newest message: linked after the tail; an imported older one is walked to.
    let prev = tail;
    while (prev >= 0 && (this.rows[prev]?.id ?? '') > id) prev = this.before[prev] as number;
    const next = prev >= 0 ? (this.after[prev] as number) : this.#head(tail);
    this.before[slot] = prev;
    this.after[slot] = next;
    if (prev >= 0) this.after[prev] = slot;
    if (next >= 0) this.before[next] = slot;
    if (prev === tail) this.sessionTail.set(sessionId, slot);
  }

  #head(slot: number): number {
    let head = slot;
    while ((this.before[head] as number) >= 0) head = this.before[head] as number;
    return head;
  }

  #clear(slot: number): void {
    const row = this.rows[slot];
    if (!row) return;
    this.rows[slot] = null;
    this.bytes -= docBytes(row, this.#distinct[slot] ?? 0);
    // The row is the one indexed (only access statistics change in place): its terms again.
    for (const term of termCounts(row).counts.keys()) {
      const posting = this.postings.get(term);
      if (posting) posting[0] = (posting[0] as number) - 1;
    }
    this.#distinct[slot] = 0;
    if (row.expiresAt !== null) this.expiring--;
    this.slotOf.delete(row.id);
    this.pinned.delete(slot);
    if (row.sessionId !== null) {
      const prev = this.before[slot] as number;
      const next = this.after[slot] as number;
      if (prev >= 0) this.after[prev] = next;
      if (next >= 0) this.before[next] = prev;
      if (this.sessionTail.get(row.sessionId) === slot) {
        if (prev >= 0) this.sessionTail.set(row.sessionId, prev);
        else this.sessionTail.delete(row.sessionId);
      }
      this.before[slot] = -1;
      this.after[slot] = -1;
    }
    this.docCount--;
    this.totalLength -= this.lengths[slot] ?? 0;
    this.lengths[slot] = 0;
    this.#empty++;
    if (this.#empty > 64 && this.#empty > this.rows.length * COMPACT_SHARE) this.#compact();
  }

  /** Rebuilds the index without emptied slots (renumbering them). */
  #compact(): void {
    const fresh = new UserIndex(
      this.version,
      this.rows.filter((r): r is MemoryRow => r !== null),
    );
    this.rows = fresh.rows;
    this.lengths = fresh.lengths;
    this.#distinct = fresh.#distinct;
    this.#strings = fresh.#strings;
    this.slotOf = fresh.slotOf;
    this.postings = fresh.postings;
    this.pinned = fresh.pinned;
    this.sessionTail = fresh.sessionTail;
    this.before = fresh.before;
    this.after = fresh.after;
    this.docCount = fresh.docCount;
    this.expiring = fresh.expiring;
    this.totalLength = fresh.totalLength;
    this.bytes = fresh.bytes;
    this.#empty = 0;
  }
}
