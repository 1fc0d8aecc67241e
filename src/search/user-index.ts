import type { JsonObject, MemoryRow } from '../memory/memory-types.ts';
import { answeredRows } from './answered-rows.ts';
import { grownCapacity, loose } from './growth.ts';
import { IdTable } from './id-table.ts';
import { entryOf, TermPostings } from './term-postings.ts';
import { termsOf } from './tokenizer.ts';

/** Per-slot working arrays of one ranking. */
export interface Scratch {
  /** BM25 of the memory's own text. */
  scores: Float64Array;
  /** Text score given by session neighbours. */
  context: Float64Array;
  /** Distinct query terms matched. */
  counts: Uint16Array;
  /**
   * Lists of slots (each slot at most once per list): those with a text score, those given
   * context only, and the candidates kept. Typed and reused: as arrays grown per query they
   * were a third of the server's allocations in the realistic mix.
   */
  touched: Int32Array;
  near: Int32Array;
  kept: Int32Array;
  /** Text score (own and context, not normalized) of each candidate kept, by its position. */
  texts: Float64Array;
  /** 1 for a slot already listed in `near` (the ranker's rarer-terms path); else 0. */
  marks: Uint8Array;
}

/** Removed memories whose versions are remembered (the out-of-order guard). */
const MAX_REMOVED = 10_000;

/** Slots freed by removals are compacted away once they are this share of all slots. */
const COMPACT_SHARE = 0.25;

// The number columns of a slot: NUMS float64 per slot. A null time is NaN (every comparison
// with NaN is false: a NaN expiry never passes, a NaN last access is never the later one).
const CREATED = 0;
const UPDATED = 1;
const LAST_ACCESS = 2;
const EXPIRES = 3;
const IMPORTANCE = 4;
const NUMS = 5;

// The integer columns of a slot: INTS int32 per slot.
const FLAGS = 0;
const LENGTH = 1;
const BEFORE = 2;
const AFTER = 3;
const ACCESSES = 4;
const VERSION = 5;
/** The slot's record in the text arena: content from START to MIDDLE, then tags and metadata. */
const RECORD_START = 6;
const RECORD_MIDDLE = 7;
const RECORD_END = 8;
/** Codes in the index's string table (-1: null). */
const KIND = 9;
const AGENT = 10;
const SESSION = 11;
const INTS = 12;

const LIVE = 1;
const PINNED = 2;

/** Slots of a new index's columns (doubled as it grows). */
const FIRST_SLOTS = 4;
/** Bytes of a new index's text arena. */
const FIRST_RECORD_BYTES = 512;
/**
 * Record bytes per memory when sizing for a build (LoCoMo turns with their tags and metadata:
 * ≈ 155 B; a longer text grows the arena, a shorter one is trimmed).
 */
const RECORD_BYTES_PER_MEMORY = 192;
/**
 * Longest record (content, tags and metadata, UTF-8 bytes) whose row may be held: the
 * table of answered rows holds at most ≈ 4,096 × 3 KiB of strings and objects.
 */
const MOST_HELD = 1024;

// Heap an index takes beyond its typed arrays: the object, its maps and its arrays' objects,
// and per memory its share of the session and pinned maps (the ids are in an IdTable, off the
// heap). Fitted to 60 and 1,200 indexes built from the soak's data (59,498 and 124,822 LoCoMo
// memories): 2.3 KB per index and 19 B per memory of V8 heap beyond the arrays.
/** Estimated heap bytes of an empty index. */
const INDEX_BYTES = 2_300;
/** Estimated heap bytes per memory. */
const MEMORY_HEAP_BYTES = 20;
/** Estimated heap bytes of a string in the string table (beyond 2 B per character). */
const STRING_BYTES = 80;

/** The text of a memory as it is indexed: content, tags and kind. */
export function indexedText(row: Pick<MemoryRow, 'content' | 'tags' | 'kind'>): string {
  return row.tags.length === 0
    ? `${row.content} ${row.kind}`
    : `${row.content} ${row.tags.join(' ')} ${row.kind}`;
}

/** The distinct terms of a memory with their frequencies, in text order. */
function termCounts(row: MemoryRow): { counts: Map<string, number>; length: number } {
  const terms = termsOf(indexedText(row));
  const counts = new Map<string, number>();
  for (const t of terms) counts.set(t, (counts.get(t) ?? 0) + 1);
  return { counts, length: terms.length };
}

function isEmptyObject(o: JsonObject): boolean {
  for (const _ in o) return false;
  return true;
}

/** The ranker's working arrays, shared by every index: {@link UserIndex.scratch}. */
let scratch: Scratch = scratchOf(0);

/** Scratch arrays of `size` entries each. */
function scratchOf(size: number): Scratch {
  return {
    scores: new Float64Array(size),
    context: new Float64Array(size),
    counts: new Uint16Array(size),
    touched: new Int32Array(size),
    near: new Int32Array(size),
    kept: new Int32Array(size),
    texts: new Float64Array(size),
    marks: new Uint8Array(size),
  };
}

/**
 * The search index of one user's memories: term statistics (postings, document lengths), the
 * memories themselves (for filters, the non-text signals and the answers) and, per session, the
 * memories in order (a message's neighbours give it context). Built once from the store, then
 * kept in step with the user's writes; the stored text is tokenized once, when a memory is
 * added.
 *
 * A memory is held in a slot. Its numbers are columns of two typed arrays, its content, tags
 * and metadata a UTF-8 record in a byte arena, its id in an {@link IdTable}, its postings in
 * {@link TermPostings}: all off the V8 heap, where the same memories as objects took ≈ 1.5 KB
 * each and V8 let the heap grow to a multiple of that between collections. {@link row} builds a
 * memory back as an object, for the few a search answers with. On the heap stay the strings
 * that repeat (kinds, agents, sessions), once each, and the sessions' and pinned slots.
 *
 * Removing a memory empties its slot and leaves its postings, which the ranker skips. Slots are
 * compacted when a quarter of them are empty.
 */
export class UserIndex {
  /** Number columns, {@link NUMS} per slot. */
  nums = new Float64Array(FIRST_SLOTS * NUMS);
  /** Integer columns, {@link INTS} per slot. */
  ints = new Int32Array(FIRST_SLOTS * INTS);
  /** Content, tags and metadata of each slot, UTF-8. */
  #records = Buffer.allocUnsafeSlow(FIRST_RECORD_BYTES);
  #recordBytes = 0;
  /** The index's name in the table of answered rows (a new one when compaction renumbers). */
  #arena = answeredRows.arena();
  /** Set once the index cache let go of the index ({@link retire}). */
  #retired = false;
  /** Id of each slot, and the slot of each held id. */
  #ids = new IdTable();
  /** Embedding of each slot, once some memory has one. */
  #embeddings: (Float32Array | null)[] | null = null;
  #embeddingBytes = 0;
  /** The strings memories repeat (kinds, agents, sessions), each once, and their codes. */
  #strings: string[] = [];
  #codes = new Map<string, number>();
  #stringBytes = 0;
  /** The owner of every memory held. */
  #tenant: string | null = null;
  #userId: string | null = null;
  #slots = 0;
  postings = new TermPostings();
  /** Slots of pinned memories: ranked with every query. */
  pinned = new Set<number>();
  /**
   * Per session, the slot of its newest memory; with the before and after links ({@link prev},
   * {@link next}; -1: none), a session's memories form a list in id (= creation) order.
   */
  sessionTail = new Map<string, number>();
  /** Versions of memories removed from the index: an older copy is never added back. */
  readonly #removed = new Map<string, number>();
  /** Held memories that have an expiry (the ranker checks expiry only when there are some). */
  expiring = 0;
  /**
   * Bounds of the importance and access count of the held memories (the largest ever held:
   * they never shrink, so they stay bounds), for the ranker's pruning.
   */
  mostImportance = 0;
  mostAccesses = 0;
  /** Live documents and the sum of their lengths (for BM25's average length). */
  docCount = 0;
  totalLength = 0;
  #empty = 0;
  /** The cache version of the user this index reflects. */
  version: number;

  /**
   * @param expected memories about to be added (a build counts them first): the columns and
   *   arenas start at a size that holds them. Grown step by step instead (a quarter at a time
   *   past 1,024 elements), a build of 2,000 memories allocated and freed each array a dozen
   *   times over, and the freed blocks stayed in the allocator's heap.
   */
  constructor(version: number, rows: Iterable<MemoryRow> = [], expected = 0) {
    this.version = version;
    if (expected > FIRST_SLOTS) {
      this.nums = new Float64Array(expected * NUMS);
      this.ints = new Int32Array(expected * INTS);
      this.#records = Buffer.allocUnsafeSlow(expected * RECORD_BYTES_PER_MEMORY);
      this.#ids = new IdTable(expected);
      this.postings = new TermPostings(expected);
    }
    for (const row of rows) this.upsert(row);
  }

  /** Number of slots, emptied ones included (the range of slot numbers). */
  get slots(): number {
    return this.#slots;
  }

  /** Approximate bytes held (for the byte-bounded cache of indexes): arrays, then the heap. */
  get bytes(): number {
    return (
      this.nums.byteLength +
      this.ints.byteLength +
      this.#records.byteLength +
      this.postings.bytes +
      this.#embeddingBytes +
      INDEX_BYTES +
      this.#ids.bytes +
      this.docCount * MEMORY_HEAP_BYTES +
      this.#stringBytes
    );
  }

  /**
   * Zeroed scratch arrays of at least {@link slots} entries, reused by the ranker. Ranking is
   * synchronous and the ranker zeroes what it used, so one set serves every index (one per
   * index cost 36 B per slot of every held index).
   */
  scratch(): Scratch {
    if (scratch.scores.length < this.#slots) scratch = scratchOf(Math.max(64, this.#slots * 2));
    return scratch;
  }

  /** Live memories holding `term` (a stem). */
  df(term: string): number {
    const p = this.postings.find(term);
    return p < 0 ? 0 : this.postings.df(p);
  }

  /** Whether the memory in `slot` holds `term`. */
  holds(term: string, slot: number): boolean {
    return this.postings.holds(term, slot);
  }

  /** Average indexed length of a live memory. */
  get averageLength(): number {
    return this.docCount === 0 ? 0 : this.totalLength / this.docCount;
  }

  /** Whether `slot` holds a memory (not emptied). */
  isLive(slot: number): boolean {
    return ((this.ints[slot * INTS + FLAGS] as number) & LIVE) !== 0;
  }

  /** Whether the memory in `slot` is pinned. */
  isPinned(slot: number): boolean {
    return ((this.ints[slot * INTS + FLAGS] as number) & PINNED) !== 0;
  }

  /** Indexed terms of `slot` (0 for an emptied slot). */
  length(slot: number): number {
    return this.ints[slot * INTS + LENGTH] as number;
  }

  /** The previous memory of the slot's session (-1: none). */
  prev(slot: number): number {
    return this.ints[slot * INTS + BEFORE] as number;
  }

  /** The next memory of the slot's session (-1: none). */
  next(slot: number): number {
    return this.ints[slot * INTS + AFTER] as number;
  }

  /** Id of the memory in `slot`. */
  id(slot: number): string {
    return this.#ids.id(slot);
  }

  /** Slot of the held memory `id`, or -1. */
  slotOf(id: string): number {
    return this.#ids.find(id);
  }

  createdAt(slot: number): number {
    return this.nums[slot * NUMS + CREATED] as number;
  }

  updatedAt(slot: number): number {
    return this.nums[slot * NUMS + UPDATED] as number;
  }

  /** Last access time, NaN when never accessed. */
  lastAccessedAt(slot: number): number {
    return this.nums[slot * NUMS + LAST_ACCESS] as number;
  }

  importance(slot: number): number {
    return this.nums[slot * NUMS + IMPORTANCE] as number;
  }

  accessCount(slot: number): number {
    return this.ints[slot * INTS + ACCESSES] as number;
  }

  embedding(slot: number): Float32Array | null {
    return this.#embeddings?.[slot] ?? null;
  }

  /** Whether the memory in `slot` has expired at `now`. */
  expired(slot: number, now: number): boolean {
    return (this.nums[slot * NUMS + EXPIRES] as number) <= now;
  }

  /** The kind of the memory in `slot`. */
  kind(slot: number): string {
    return this.#string(this.ints[slot * INTS + KIND] as number) as string;
  }

  agentId(slot: number): string | null {
    return this.#string(this.ints[slot * INTS + AGENT] as number);
  }

  sessionId(slot: number): string | null {
    return this.#string(this.ints[slot * INTS + SESSION] as number);
  }

  /** Tags of the memory in `slot` (read from its record). */
  tags(slot: number): string[] {
    return this.#extra(slot)[0];
  }

  /**
   * The memory in `slot` as the store gave it (access statistics as they are now), or null: a
   * row shared with other answers, not to be changed. Rows are built for answers, and answers
   * recur: a built row is held in the shared table of answered rows from its second answer
   * (when its record is short, and the index is not retired), and given again while its access
   * statistics are unchanged; once they moved, a new row is built around its strings.
   */
  row(slot: number): MemoryRow | null {
    if (slot < 0 || slot >= this.#slots || !this.isLive(slot)) return null;
    const held = answeredRows.find(this.#arena, slot);
    if (held !== null) {
      if (this.#current(slot, held)) return held;
      // New access statistics (every answer counts one): a new row around the held strings.
      // The held row stays as it is: replacing it at every answer made each one outlive a
      // scavenge or two in the table and die in the old generation.
      return this.#build(slot, held.id, held.content, held.tags, held.metadata);
    }
    const row = this.#fresh(slot);
    const i = slot * INTS;
    if (
      (this.ints[i + RECORD_END] as number) - (this.ints[i + RECORD_START] as number) <=
        MOST_HELD &&
      !this.#retired &&
      answeredRows.admit(this.#arena, slot)
    )
      answeredRows.put(this.#arena, slot, row);
    return row;
  }

  /**
   * Marks the index as let go by the index cache (dropped after a write, an erasure, evicted or
   * replaced): it still answers a search that already holds it, but holds no more rows in the
   * shared table. Without it, a search running through a user's erasure could hold a row of
   * theirs after the erasure let go of their rows, until another row took its entry.
   */
  retire(): void {
    this.#retired = true;
  }

  /** Whether a row of `slot` built earlier has its access statistics as they are now. */
  #current(slot: number, row: MemoryRow): boolean {
    const last = this.nums[slot * NUMS + LAST_ACCESS] as number;
    return (
      row.accessCount === this.ints[slot * INTS + ACCESSES] &&
      (Number.isNaN(last) ? row.lastAccessedAt === null : row.lastAccessedAt === last)
    );
  }

  /** The row of a live slot built from its columns and record, not held. */
  #fresh(slot: number): MemoryRow {
    return this.#build(slot, this.#ids.id(slot), this.#content(slot), ...this.#extra(slot));
  }

  #content(slot: number): string {
    const i = slot * INTS;
    return this.#records.toString(
      'utf8',
      this.ints[i + RECORD_START] as number,
      this.ints[i + RECORD_MIDDLE] as number,
    );
  }

  /** The row of a live slot, with its id, content, tags and metadata given. */
  #build(
    slot: number,
    id: string,
    content: string,
    tags: string[],
    metadata: JsonObject,
  ): MemoryRow {
    const i = slot * INTS;
    const f = slot * NUMS;
    const ints = this.ints;
    const nums = this.nums;
    const lastAccess = nums[f + LAST_ACCESS] as number;
    const expires = nums[f + EXPIRES] as number;
    return {
      tenant: this.#tenant as string,
      id,
      userId: this.#userId as string,
      agentId: this.#string(ints[i + AGENT] as number),
      sessionId: this.#string(ints[i + SESSION] as number),
      content,
      kind: this.#string(ints[i + KIND] as number) as string,
      tags,
      metadata,
      importance: nums[f + IMPORTANCE] as number,
      pinned: ((ints[i + FLAGS] as number) & PINNED) !== 0,
      createdAt: nums[f + CREATED] as number,
      updatedAt: nums[f + UPDATED] as number,
      expiresAt: Number.isNaN(expires) ? null : expires,
      deletedAt: null,
      accessCount: ints[i + ACCESSES] as number,
      lastAccessedAt: Number.isNaN(lastAccess) ? null : lastAccess,
      version: ints[i + VERSION] as number,
      embedding: this.embedding(slot),
    };
  }

  /**
   * Fits every array to what it holds, within an eighth. A built index changes by a few
   * memories at a time, so the slack of its build would mostly stay unused.
   */
  trim(): void {
    const slots = Math.max(1, this.#slots);
    if (loose(this.ints.length, slots * INTS)) {
      this.nums = this.nums.slice(0, slots * NUMS);
      this.ints = this.ints.slice(0, slots * INTS);
    }
    if (loose(this.#records.byteLength, this.#recordBytes)) {
      const records = Buffer.allocUnsafeSlow(Math.max(1, this.#recordBytes));
      this.#records.copy(records, 0, 0, this.#recordBytes);
      this.#records = records;
    }
    this.postings.trim();
    this.#ids.trim();
  }

  /** Every held memory, as rows (for compaction and checks; not held as answered rows). */
  *liveRows(): Generator<MemoryRow> {
    for (let s = 0; s < this.#slots; s++) {
      if (this.isLive(s)) yield this.#fresh(s);
    }
  }

  /**
   * Brings a memory into the index as the store now has it: added, replaced, or removed when
   * deleted. An older version than the one held (or last removed) is ignored, so changes
   * applied out of order cannot go back in time. Every memory of an index has one owner.
   */
  upsert(row: MemoryRow): void {
    if (this.#tenant === null) {
      this.#tenant = row.tenant;
      this.#userId = row.userId;
    } else if (row.tenant !== this.#tenant || row.userId !== this.#userId) {
      throw new RangeError('UserIndex: a memory of another user');
    }
    const slot = this.#ids.find(row.id);
    const known =
      slot >= 0 ? (this.ints[slot * INTS + VERSION] as number) : this.#removed.get(row.id);
    if (known !== undefined && known > row.version) return;
    if (slot >= 0) this.#clear(slot);
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
    const slot = this.#ids.find(id);
    if (slot < 0) return;
    const accesses = (this.ints[slot * INTS + ACCESSES] as number) + 1;
    this.ints[slot * INTS + ACCESSES] = accesses;
    if (accesses > this.mostAccesses) this.mostAccesses = accesses;
    const f = slot * NUMS + LAST_ACCESS;
    const last = this.nums[f] as number;
    if (Number.isNaN(last) || last < at) this.nums[f] = at;
  }

  #add(row: MemoryRow): void {
    if (this.#slots * INTS === this.ints.length) this.#grow();
    const slot = this.#slots++;
    const { counts, length } = termCounts(row);
    for (const [term, n] of counts) this.postings.add(term, entryOf(slot, n));
    const i = slot * INTS;
    const f = slot * NUMS;
    const ints = this.ints;
    const nums = this.nums;
    nums[f + CREATED] = row.createdAt;
    nums[f + UPDATED] = row.updatedAt;
    nums[f + LAST_ACCESS] = row.lastAccessedAt ?? Number.NaN;
    nums[f + EXPIRES] = row.expiresAt ?? Number.NaN;
    nums[f + IMPORTANCE] = row.importance;
    ints[i + FLAGS] = LIVE | (row.pinned ? PINNED : 0);
    ints[i + LENGTH] = length;
    ints[i + BEFORE] = -1;
    ints[i + AFTER] = -1;
    ints[i + ACCESSES] = row.accessCount;
    if (row.importance > this.mostImportance) this.mostImportance = row.importance;
    if (row.accessCount > this.mostAccesses) this.mostAccesses = row.accessCount;
    ints[i + VERSION] = row.version;
    ints[i + KIND] = this.#code(row.kind);
    ints[i + AGENT] = row.agentId === null ? -1 : this.#code(row.agentId);
    ints[i + SESSION] = row.sessionId === null ? -1 : this.#code(row.sessionId);
    this.#writeRecord(slot, row);
    this.#ids.push(row.id);
    if (row.embedding !== null) {
      this.#embeddings ??= [];
      this.#embeddings[slot] = row.embedding;
      this.#embeddingBytes += row.embedding.byteLength;
    }
    if (row.expiresAt !== null) this.expiring++;
    if (row.pinned) this.pinned.add(slot);
    if (row.sessionId !== null) this.#joinSession(ints[i + SESSION] as number, slot, row.id);
    this.docCount++;
    this.totalLength += length;
  }

  /** Gives the columns room for one more slot. */
  #grow(): void {
    const slots = grownCapacity(this.ints.length / INTS, this.#slots + 1);
    const nums = new Float64Array(slots * NUMS);
    nums.set(this.nums);
    this.nums = nums;
    const ints = new Int32Array(slots * INTS);
    ints.set(this.ints);
    this.ints = ints;
  }

  /** Writes the slot's content, then its tags and metadata (JSON, when there are any). */
  #writeRecord(slot: number, row: MemoryRow): void {
    const extra =
      row.tags.length === 0 && isEmptyObject(row.metadata)
        ? ''
        : JSON.stringify([row.tags, row.metadata]);
    // At most 3 UTF-8 bytes per UTF-16 unit.
    const most = (row.content.length + extra.length) * 3;
    if (this.#recordBytes + most > this.#records.byteLength) {
      const size = grownCapacity(this.#records.byteLength, this.#recordBytes + most);
      const grown = Buffer.allocUnsafeSlow(size);
      this.#records.copy(grown, 0, 0, this.#recordBytes);
      this.#records = grown;
    }
    const i = slot * INTS;
    const start = this.#recordBytes;
    const middle = start + this.#records.write(row.content, start, 'utf8');
    const end = extra === '' ? middle : middle + this.#records.write(extra, middle, 'utf8');
    this.ints[i + RECORD_START] = start;
    this.ints[i + RECORD_MIDDLE] = middle;
    this.ints[i + RECORD_END] = end;
    this.#recordBytes = end;
  }

  /** Tags and metadata of the slot, parsed from its record (new objects each time). */
  #extra(slot: number): [string[], JsonObject] {
    const i = slot * INTS;
    const middle = this.ints[i + RECORD_MIDDLE] as number;
    const end = this.ints[i + RECORD_END] as number;
    if (middle === end) return [[], {}];
    return JSON.parse(this.#records.toString('utf8', middle, end)) as [string[], JsonObject];
  }

  #code(value: string): number {
    const held = this.#codes.get(value);
    if (held !== undefined) return held;
    const code = this.#strings.length;
    this.#strings.push(value);
    this.#codes.set(value, code);
    this.#stringBytes += value.length * 2 + STRING_BYTES;
    return code;
  }

  #string(code: number): string | null {
    return code < 0 ? null : (this.#strings[code] as string);
  }

  #joinSession(code: number, slot: number, id: string): void {
    const sessionId = this.#strings[code] as string;
    const tail = this.sessionTail.get(sessionId);
    if (tail === undefined) {
      this.sessionTail.set(sessionId, slot);
      return;
    }
    const ints = this.ints;
    // Usually the newest message: linked after the tail; an imported older one is walked to.
    let prev = tail;
    while (prev >= 0 && this.#ids.id(prev) > id) prev = ints[prev * INTS + BEFORE] as number;
    const next = prev >= 0 ? (ints[prev * INTS + AFTER] as number) : this.#head(tail);
    ints[slot * INTS + BEFORE] = prev;
    ints[slot * INTS + AFTER] = next;
    if (prev >= 0) ints[prev * INTS + AFTER] = slot;
    if (next >= 0) ints[next * INTS + BEFORE] = slot;
    if (prev === tail) this.sessionTail.set(sessionId, slot);
  }

  #head(slot: number): number {
    let head = slot;
    while ((this.ints[head * INTS + BEFORE] as number) >= 0) {
      head = this.ints[head * INTS + BEFORE] as number;
    }
    return head;
  }

  #clear(slot: number): void {
    if (!this.isLive(slot)) return;
    // Built apart from the table of answered rows, and its held row let go: the replaced or
    // deleted version is never answered again.
    const row = this.#fresh(slot);
    answeredRows.drop(this.#arena, slot);
    const ints = this.ints;
    const i = slot * INTS;
    // The row is the one indexed (only access statistics change in place): its terms again.
    for (const term of termCounts(row).counts.keys()) this.postings.release(term);
    if (row.expiresAt !== null) this.expiring--;
    if (this.#embeddings && row.embedding) {
      this.#embeddingBytes -= row.embedding.byteLength;
      this.#embeddings[slot] = null;
    }
    this.#ids.remove(slot);
    this.pinned.delete(slot);
    if (row.sessionId !== null) {
      const prev = ints[i + BEFORE] as number;
      const next = ints[i + AFTER] as number;
      if (prev >= 0) ints[prev * INTS + AFTER] = next;
      if (next >= 0) ints[next * INTS + BEFORE] = prev;
      if (this.sessionTail.get(row.sessionId) === slot) {
        if (prev >= 0) this.sessionTail.set(row.sessionId, prev);
        else this.sessionTail.delete(row.sessionId);
      }
      ints[i + BEFORE] = -1;
      ints[i + AFTER] = -1;
    }
    this.docCount--;
    this.totalLength -= ints[i + LENGTH] as number;
    ints[i + LENGTH] = 0;
    ints[i + FLAGS] = 0;
    this.#empty++;
    if (this.#empty > 64 && this.#empty > this.#slots * COMPACT_SHARE) this.#compact();
  }

  /** Rebuilds the index without emptied slots (renumbering them, dropping their records). */
  #compact(): void {
    const fresh = new UserIndex(this.version, this.liveRows(), this.docCount);
    fresh.trim();
    this.nums = fresh.nums;
    this.ints = fresh.ints;
    this.#records = fresh.#records;
    this.#recordBytes = fresh.#recordBytes;
    this.#arena = fresh.#arena;
    this.#ids = fresh.#ids;
    this.#embeddings = fresh.#embeddings;
    this.#embeddingBytes = fresh.#embeddingBytes;
    this.#strings = fresh.#strings;
    this.#codes = fresh.#codes;
    this.#stringBytes = fresh.#stringBytes;
    this.#slots = fresh.#slots;
    this.postings = fresh.postings;
    this.pinned = fresh.pinned;
    this.sessionTail = fresh.sessionTail;
    this.docCount = fresh.docCount;
    this.expiring = fresh.expiring;
    this.mostImportance = fresh.mostImportance;
    this.mostAccesses = fresh.mostAccesses;
    this.totalLength = fresh.totalLength;
    this.#empty = 0;
  }
}
