import { hashA, hashB } from '../util/string-hash.ts';
import { grownCapacity, powerOfTwoAtLeast } from './growth.ts';

/** Bits of a posting entry that hold the term frequency (the rest hold the slot). */
const TF_BITS = 9;
/** Term frequencies are counted up to this (BM25 has long saturated by then). */
const TF_MAX = (1 << TF_BITS) - 1;

/**
 * A posting entry: `slot << 9 | tf`. Slots stay below 2^22 (at most 1,000,000 memories per
 * index, a quarter more slots before compaction), so an entry fits an Int32Array.
 */
export const entryOf = (slot: number, tf: number): number =>
  slot * (TF_MAX + 1) + Math.min(tf, TF_MAX);

/** The slot of a posting entry. */
export const entrySlot = (entry: number): number => entry >>> TF_BITS;

/** The term frequency of a posting entry. */
export const entryTf = (entry: number): number => entry & TF_MAX;

// The terms, dense: STRIDE int32 per term, in the order they were first added.
const KEY_A = 0;
const KEY_B = 1;
const DF = 2;
/** Where the term's run of entries starts in `entries`. */
const START = 3;
const LENGTH = 4;
const CAPACITY = 5;
const STRIDE = 6;

const FIRST_POSITIONS = 16;
const FIRST_TERMS = 8;
const FIRST_ENTRIES = 16;
// A build's first sizes per memory it is about to index (LoCoMo turns in the soak's data: 1.1
// distinct terms per memory for a user of 2,000, 15 entries, runs at up to twice their length
// while they grow).
const TERMS_PER_MEMORY = 1.5;
const ENTRIES_PER_MEMORY = 32;

/** Positions of a hash table for `terms` terms: a power of two, at most two thirds full. */
const tableSize = (terms: number): number => powerOfTwoAtLeast(terms * 1.5, FIRST_POSITIONS);

/**
 * The postings of one user's index, off the V8 heap, in three typed arrays: the terms (dense),
 * a hash table of positions pointing at them, and one arena of entries. A term is known by two
 * 32-bit hashes of it, not by its string (a user's index holds thousands of terms; two of them
 * sharing both hashes has a chance near 2^-64 per pair). Each term's entries form one run of
 * the arena, slots ascending; a full run moves to the end of the arena at twice its capacity,
 * and the arena is repacked when the runs left behind reach half the live runs' capacity (a
 * third of the arena's used part). {@link trim} fits
 * every array to what it holds, once an index is built.
 *
 * As objects on the heap (a Map of term strings to arrays) the postings cost ≈ 125 B per term
 * and 12 B per entry, and V8 grew its heap to a multiple of them between collections; here a
 * term costs 24 B and 4–6 B of hash table, an entry 4 B (trimmed), outside the collector.
 */
export class TermPostings {
  /** Hash table (linear probing on the first hash): term numbers, -1 for an empty position. */
  #positions = new Int32Array(FIRST_POSITIONS).fill(-1);
  #terms = new Int32Array(FIRST_TERMS * STRIDE);
  #count = 0;
  /** Entries of every term: term t's run is `entries[start(t) .. start(t) + length(t)]`. */
  entries = new Int32Array(FIRST_ENTRIES);
  /** End of the arena's used part. */
  #used = 0;
  /** Sum of the runs' capacities (what a repack keeps). */
  #reserved = 0;

  /**
   * @param memories memories about to be added (a build knows): the arrays start at a size that
   *   holds them, instead of growing through a chain of copies.
   */
  constructor(memories = 0) {
    const terms = Math.ceil(memories * TERMS_PER_MEMORY);
    if (terms <= FIRST_TERMS) return;
    this.#terms = new Int32Array(terms * STRIDE);
    this.#positions = new Int32Array(tableSize(terms)).fill(-1);
    this.entries = new Int32Array(memories * ENTRIES_PER_MEMORY);
  }

  /** Distinct terms held. */
  get terms(): number {
    return this.#count;
  }

  /** Bytes of the arrays. */
  get bytes(): number {
    return this.#positions.byteLength + this.#terms.byteLength + this.entries.byteLength;
  }

  /** The number of `term`, or -1 when no memory ever held it. */
  find(term: string): number {
    return this.#probe(hashA(term), hashB(term));
  }

  /** Live memories holding term `t` (entries of removed ones stay). */
  df(t: number): number {
    return this.#terms[t * STRIDE + DF] as number;
  }

  /** Where the run of term `t` starts in {@link entries}. */
  start(t: number): number {
    return this.#terms[t * STRIDE + START] as number;
  }

  /** Entries in the run of term `t`. */
  length(t: number): number {
    return this.#terms[t * STRIDE + LENGTH] as number;
  }

  /** Whether the run of `term` has an entry for `slot`. */
  holds(term: string, slot: number): boolean {
    const t = this.find(term);
    if (t < 0) return false;
    const start = this.start(t);
    const end = start + this.length(t);
    for (let i = start; i < end; i++)
      if (entrySlot(this.entries[i] as number) === slot) return true;
    return false;
  }

  /** Appends an entry to the run of `term` (created when new): one more memory holds it. */
  add(term: string, entry: number): void {
    const a = hashA(term);
    const b = hashB(term);
    let t = this.#probe(a, b);
    if (t < 0) t = this.#insert(a, b);
    const o = t * STRIDE;
    const terms = this.#terms;
    terms[o + DF] = (terms[o + DF] as number) + 1;
    if (terms[o + LENGTH] === terms[o + CAPACITY]) this.#move(o);
    const length = terms[o + LENGTH] as number;
    this.entries[(terms[o + START] as number) + length] = entry;
    terms[o + LENGTH] = length + 1;
  }

  /** One memory less holds `term` (its entry stays until the index is compacted). */
  release(term: string): void {
    const t = this.find(term);
    if (t >= 0) this.#terms[t * STRIDE + DF] = (this.#terms[t * STRIDE + DF] as number) - 1;
  }

  /** Every term's document frequency and entry count (for checks). */
  *runs(): Generator<{ df: number; length: number }> {
    for (let t = 0; t < this.#count; t++) yield { df: this.df(t), length: this.length(t) };
  }

  /**
   * Fits the terms and the arena to what they hold (each run's capacity to its length): an
   * index is built once and then changes by a few memories at a time.
   */
  trim(): void {
    this.#terms = this.#terms.slice(0, Math.max(1, this.#count) * STRIDE);
    // A table sized for more terms than came (a build's guess ran ahead of its rows).
    const fits = tableSize(this.#count);
    if (this.#positions.length > fits * 2) this.#rehash(fits);
    const terms = this.#terms;
    for (let o = 0; o < this.#count * STRIDE; o += STRIDE)
      terms[o + CAPACITY] = terms[o + LENGTH] as number;
    this.#repack(Math.max(1, this.#lengths()));
  }

  #lengths(): number {
    let sum = 0;
    for (let o = 0; o < this.#count * STRIDE; o += STRIDE) sum += this.#terms[o + LENGTH] as number;
    return sum;
  }

  #probe(a: number, b: number): number {
    const positions = this.#positions;
    const terms = this.#terms;
    const mask = positions.length - 1;
    for (let p = a & mask; ; p = (p + 1) & mask) {
      const t = positions[p] as number;
      if (t < 0) return -1;
      if (terms[t * STRIDE + KEY_A] === a && terms[t * STRIDE + KEY_B] === b) return t;
    }
  }

  /** Adds a term with an empty run; returns its number. */
  #insert(a: number, b: number): number {
    const t = this.#count++;
    if (t * STRIDE === this.#terms.length) {
      const grown = new Int32Array(grownCapacity(this.#terms.length / STRIDE, t + 1) * STRIDE);
      grown.set(this.#terms);
      this.#terms = grown;
    }
    const o = t * STRIDE;
    const terms = this.#terms;
    terms[o + KEY_A] = a;
    terms[o + KEY_B] = b;
    terms[o + DF] = 0;
    terms[o + START] = this.#used;
    terms[o + LENGTH] = 0;
    terms[o + CAPACITY] = 0;
    // At most two thirds full: probes stay short.
    if (this.#count * 3 > this.#positions.length * 2) this.#rehash(this.#positions.length * 2);
    else this.#place(t);
    return t;
  }

  /** Puts term `t` at the first empty position of its probe sequence. */
  #place(t: number): void {
    const positions = this.#positions;
    const mask = positions.length - 1;
    let p = (this.#terms[t * STRIDE + KEY_A] as number) & mask;
    while ((positions[p] as number) >= 0) p = (p + 1) & mask;
    positions[p] = t;
  }

  #rehash(size: number): void {
    this.#positions = new Int32Array(size).fill(-1);
    for (let t = 0; t < this.#count; t++) this.#place(t);
  }

  /** Gives the full run at offset `o` of the terms twice its capacity (at least 1). */
  #move(o: number): void {
    const capacity = this.#terms[o + CAPACITY] as number;
    const grown = capacity === 0 ? 1 : capacity * 2;
    this.#reserve(grown); // may repack: read the run's start after it
    const terms = this.#terms;
    const start = terms[o + START] as number;
    if (capacity > 0 && start + capacity === this.#used) {
      // The newest run grows where it is.
      this.#used += grown - capacity;
    } else {
      const at = this.#used;
      this.entries.copyWithin(at, start, start + (terms[o + LENGTH] as number));
      terms[o + START] = at;
      this.#used += grown;
    }
    terms[o + CAPACITY] = grown;
    this.#reserved += grown - capacity;
  }

  /** Makes room for `more` entries at the arena's end, repacking first when it pays. */
  #reserve(more: number): void {
    if (this.#used + more <= this.entries.length) return;
    // Runs left behind never outgrow the live runs' capacities (each moved at half its size):
    // repacked once they reach half of them, a third of the used arena.
    if (this.#used - this.#reserved > this.#reserved / 2) this.#repack(this.entries.length);
    const needed = this.#used + more;
    if (needed <= this.entries.length) return;
    const grown = new Int32Array(grownCapacity(this.entries.length, needed));
    grown.set(this.entries.subarray(0, this.#used));
    this.entries = grown;
  }

  /** Copies every run, in term order, to the start of a fresh arena of `size` entries. */
  #repack(size: number): void {
    const fresh = new Int32Array(size);
    const terms = this.#terms;
    let at = 0;
    for (let o = 0; o < this.#count * STRIDE; o += STRIDE) {
      const start = terms[o + START] as number;
      fresh.set(this.entries.subarray(start, start + (terms[o + LENGTH] as number)), at);
      terms[o + START] = at;
      at += terms[o + CAPACITY] as number;
    }
    this.entries = fresh;
    this.#used = at;
    this.#reserved = at;
  }
}
