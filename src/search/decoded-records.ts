/** Bits of a table position: 4,096 entries. */
const BITS = 12;
/** Longer contents are decoded on every use (the table's worst case stays ≈ 8 MiB). */
const MOST_CHARS = 1024;

/**
 * The ids and contents of recently answered memories, decoded: one table shared by every
 * user's index, direct-mapped and bounded. A {@link UserIndex} keeps its memories as UTF-8
 * bytes off the V8 heap and decodes the few a search answers with; decoding an id and a
 * content took ≈ 130 ns per answered memory (a quarter of a 50-memory search), and the same
 * memories answer again and again (a user's best matches recur from turn to turn).
 *
 * An entry is keyed by its arena (a number each index gets, and again whenever compaction
 * renumbers its slots) and the memory's slot: an index never reuses a slot (a replaced memory
 * takes a new one), so a key names one stored version of one memory for good, entries need no
 * invalidation, and a stale one is merely never hit again. (Not by the record's offset: an
 * empty record takes no bytes, and the next one starts at the same offset.)
 */
export class DecodedRecords {
  readonly #arenas = new Float64Array(1 << BITS).fill(-1);
  readonly #slots = new Int32Array(1 << BITS);
  readonly #ids: string[] = new Array<string>(1 << BITS).fill('');
  readonly #contents: string[] = new Array<string>(1 << BITS).fill('');
  #nextArena = 0;

  /** A number naming a new arena (an index's slots as numbered now). */
  arena(): number {
    return this.#nextArena++;
  }

  /** The entry of `slot` of `arena`, or -1 when it is not held. */
  find(arena: number, slot: number): number {
    const e = position(arena, slot);
    return this.#arenas[e] === arena && this.#slots[e] === slot ? e : -1;
  }

  /** The id of a found entry. */
  id(entry: number): string {
    return this.#ids[entry] as string;
  }

  /** The content of a found entry. */
  content(entry: number): string {
    return this.#contents[entry] as string;
  }

  /** Keeps a slot's decoded id and content (in place of the entry's last one). */
  put(arena: number, slot: number, id: string, content: string): void {
    if (content.length > MOST_CHARS) return;
    const e = position(arena, slot);
    this.#arenas[e] = arena;
    this.#slots[e] = slot;
    this.#ids[e] = id;
    this.#contents[e] = content;
  }
}

/** The table position of a key (a multiplicative hash of both parts, its top bits). */
function position(arena: number, slot: number): number {
  return (Math.imul(arena, 0x9e3779b1) ^ Math.imul(slot, 0x85ebca6b)) >>> (32 - BITS);
}

/** The table the indexes of this process share. */
export const decodedRecords = new DecodedRecords();
