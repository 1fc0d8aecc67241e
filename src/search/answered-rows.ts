import type { MemoryRow } from '../memory/memory-types.ts';

/** Bits of a table position: 4,096 entries. */
const BITS = 12;

/**
 * The rows of recently answered memories, built: one table shared by every user's index,
 * direct-mapped and bounded. A {@link UserIndex} keeps its memories as columns and UTF-8 bytes
 * off the V8 heap and builds back as objects the few a search answers with; decoding the id
 * and content and building the object took ≈ 180 ns per answered memory (a third of a
 * 50-memory search), and the same memories answer again and again (a user's best matches recur
 * from turn to turn).
 *
 * An entry is keyed by its arena (a number each index gets, and again whenever compaction
 * renumbers its slots) and the memory's slot: an index never reuses a slot (a replaced memory
 * takes a new one), so a key names one stored version of one memory for good, and a stale
 * entry is merely never hit again. Only the access statistics of a version change in place:
 * the index compares them before it answers with a held row. (Not keyed by the record's
 * offset: an empty record takes no bytes, and the next one starts at the same offset.)
 *
 * Rows are shared by every answer that holds them: like the cache's values, they are never
 * changed after they are built.
 *
 * A row is held from its second answer on ({@link admit}): under the realistic mix most
 * answered memories do not answer again before their entry is taken (5,000 answers a second
 * over 4,096 entries), and holding each one for that while made it outlive a young-generation
 * collection or two, then die in the old generation (in a sample of the mix, a quarter of the
 * server's promotion came from this table). A one-off row now dies young.
 */
export class AnsweredRows {
  readonly #arenas = new Float64Array(1 << BITS).fill(-1);
  readonly #slots = new Int32Array(1 << BITS);
  readonly #rows: (MemoryRow | null)[] = new Array<MemoryRow | null>(1 << BITS).fill(null);
  /** Per position, the key last answered without being held: the second answer holds it. */
  readonly #seenArenas = new Float64Array(1 << BITS).fill(-1);
  readonly #seenSlots = new Int32Array(1 << BITS);
  #nextArena = 0;

  /** A number naming a new arena (an index's slots as numbered now). */
  arena(): number {
    return this.#nextArena++;
  }

  /** The row held for `slot` of `arena`, or null. */
  find(arena: number, slot: number): MemoryRow | null {
    const e = position(arena, slot);
    return this.#arenas[e] === arena && this.#slots[e] === slot ? (this.#rows[e] ?? null) : null;
  }

  /** Lets go of the row of `slot` of `arena`, if held (a version replaced or deleted). */
  drop(arena: number, slot: number): void {
    const e = position(arena, slot);
    if (this.#arenas[e] !== arena || this.#slots[e] !== slot) return;
    this.#rows[e] = null;
    this.#arenas[e] = -1;
  }

  /**
   * Lets go of every held row of a user (their erasure): an erased user's content must not
   * stay in memory until other rows happen to take its entries.
   */
  forget(tenant: string, userId: string): void {
    for (let e = 0; e < this.#rows.length; e++) {
      const row = this.#rows[e];
      if (row?.tenant !== tenant || row.userId !== userId) continue;
      this.#rows[e] = null;
      this.#arenas[e] = -1;
    }
  }

  /** How many rows of a user are held (for checks). */
  heldOf(tenant: string, userId: string): number {
    let n = 0;
    for (const row of this.#rows) if (row?.tenant === tenant && row.userId === userId) n++;
    return n;
  }

  /**
   * Whether a row of `slot` of `arena` that is not held should be: true when the same key was
   * the last one its position answered without holding it (a second answer), else false, and
   * the key is noted for next time.
   */
  admit(arena: number, slot: number): boolean {
    const e = position(arena, slot);
    if (this.#seenArenas[e] === arena && this.#seenSlots[e] === slot) return true;
    this.#seenArenas[e] = arena;
    this.#seenSlots[e] = slot;
    return false;
  }

  /** Holds the row of `slot` of `arena` (in place of the entry's last one). */
  put(arena: number, slot: number, row: MemoryRow): void {
    const e = position(arena, slot);
    this.#arenas[e] = arena;
    this.#slots[e] = slot;
    this.#rows[e] = row;
  }
}

/** The table position of a key (a multiplicative hash of both parts, its top bits). */
function position(arena: number, slot: number): number {
  return (Math.imul(arena, 0x9e3779b1) ^ Math.imul(slot, 0x85ebca6b)) >>> (32 - BITS);
}

/** The table the indexes of this process share. */
export const answeredRows = new AnsweredRows();
