import { grownCapacity, loose, powerOfTwoAtLeast } from './growth.ts';

/** A table position that holds no slot. */
const EMPTY = -1;
/** A position whose slot was removed: probes go on past it. */
const REMOVED = -2;

const FIRST_SLOTS = 4;
const FIRST_BYTES = 128;
const FIRST_POSITIONS = 8;
/** Bytes of an id expected when sizing for a build (a ULID). */
const ID_BYTES = 26;

/** Positions of a table for `ids` ids: a power of two, at most half full. */
const tableSize = (ids: number): number => powerOfTwoAtLeast(ids * 2, FIRST_POSITIONS);

/** FNV-1a over the UTF-16 units of an ASCII string, or -1 when it is not ASCII. */
function asciiHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) return -1;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return mixed(h);
}

/** FNV-1a over bytes (the same value as {@link asciiHash} for an ASCII string's bytes). */
function bytesHash(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ (bytes[i] as number), 0x01000193);
  return mixed(h);
}

/** Spreads FNV's bits over the low ones a table position takes; non-negative. */
function mixed(h: number): number {
  let x = h ^ (h >>> 16);
  x = Math.imul(x, 0x7feb352d);
  return (x ^ (x >>> 15)) >>> 1;
}

/**
 * The ids of an index's slots and the slot of each id, off the V8 heap: the ids' UTF-8 bytes in
 * one arena (slot s from `starts[s]` to `starts[s + 1]`), and a hash table of slot numbers
 * (linear probing, at most two thirds full). As strings in an array and a Map the same ids took
 * ≈ 110 B of heap each and were marked by every full collection; here a ULID takes 26 B of
 * arena, 4 B of offset and 6–16 B of table. Slots are appended in order and never reused (an
 * index compacts by building a new one).
 */
export class IdTable {
  #bytes = Buffer.allocUnsafeSlow(FIRST_BYTES);
  /** Where each slot's id starts; `starts[size]` is the end of the arena's used part. */
  #starts = new Int32Array(FIRST_SLOTS + 1);
  #size = 0;
  #positions = new Int32Array(FIRST_POSITIONS).fill(EMPTY);
  /** Positions that are not EMPTY (removed ones included): they lengthen probes. */
  #filled = 0;

  /** @param expected ids about to be pushed (a build knows): sized for them at once. */
  constructor(expected = 0) {
    if (expected <= FIRST_SLOTS) return;
    this.#bytes = Buffer.allocUnsafeSlow(expected * ID_BYTES);
    this.#starts = new Int32Array(expected + 1);
    this.#positions = new Int32Array(tableSize(expected)).fill(EMPTY);
  }

  /** Slots appended so far (removed ones included). */
  get size(): number {
    return this.#size;
  }

  /** Bytes of the arrays. */
  get bytes(): number {
    return this.#bytes.byteLength + this.#starts.byteLength + this.#positions.byteLength;
  }

  /** The id of `slot` (removed slots keep theirs). */
  id(slot: number): string {
    return this.#bytes.toString('utf8', this.#starts[slot], this.#starts[slot + 1]);
  }

  /** The slot of `id`, or -1 when it is not held. */
  find(id: string): number {
    const ascii = asciiHash(id);
    const encoded = ascii < 0 ? Buffer.from(id, 'utf8') : null;
    const hash = encoded === null ? ascii : bytesHash(encoded, 0, encoded.length);
    const positions = this.#positions;
    const mask = positions.length - 1;
    for (let p = hash & mask; ; p = (p + 1) & mask) {
      const slot = positions[p] as number;
      if (slot === EMPTY) return -1;
      if (slot >= 0 && this.#holds(slot, id, encoded)) return slot;
    }
  }

  /** Appends `id` (not held yet) as slot {@link size}; returns that slot. */
  push(id: string): number {
    const slot = this.#size;
    if (slot + 2 > this.#starts.length) {
      const grown = new Int32Array(grownCapacity(this.#starts.length, slot + 2));
      grown.set(this.#starts);
      this.#starts = grown;
    }
    const start = this.#starts[slot] as number;
    // At most 3 UTF-8 bytes per UTF-16 unit.
    if (start + id.length * 3 > this.#bytes.byteLength) {
      const grown = Buffer.allocUnsafeSlow(
        grownCapacity(this.#bytes.byteLength, start + id.length * 3),
      );
      this.#bytes.copy(grown, 0, 0, start);
      this.#bytes = grown;
    }
    this.#starts[slot + 1] = start + this.#bytes.write(id, start, 'utf8');
    this.#size = slot + 1;
    if ((this.#filled + 1) * 3 > this.#positions.length * 2) this.#rehash();
    this.#place(slot);
    this.#filled++;
    return slot;
  }

  /** Forgets `slot`: {@link find} no longer finds its id. */
  remove(slot: number): void {
    const positions = this.#positions;
    const mask = positions.length - 1;
    for (let p = this.#slotHash(slot) & mask; ; p = (p + 1) & mask) {
      const held = positions[p] as number;
      if (held === EMPTY) return;
      if (held === slot) {
        positions[p] = REMOVED;
        return;
      }
    }
  }

  /**
   * Fits the arena and the offsets to what they hold (an index is built once, then trimmed);
   * an array already within an eighth of it is kept (a copy would cost more than the slack).
   */
  trim(): void {
    const used = this.#starts[this.#size] as number;
    if (loose(this.#bytes.byteLength, used)) {
      const bytes = Buffer.allocUnsafeSlow(Math.max(1, used));
      this.#bytes.copy(bytes, 0, 0, used);
      this.#bytes = bytes;
    }
    if (loose(this.#starts.length, this.#size + 1)) {
      this.#starts = this.#starts.slice(0, this.#size + 1);
    }
    // A table sized for more ids than came (a build's count ran ahead of its rows).
    if (this.#positions.length > tableSize(this.#filled) * 2) this.#rehash();
  }

  /** Whether `slot` holds `id` (`encoded`: its UTF-8 bytes, when it is not ASCII). */
  #holds(slot: number, id: string, encoded: Buffer | null): boolean {
    const start = this.#starts[slot] as number;
    const end = this.#starts[slot + 1] as number;
    const bytes = this.#bytes;
    if (encoded !== null) return bytes.subarray(start, end).equals(encoded);
    if (end - start !== id.length) return false;
    for (let i = 0; i < id.length; i++) if (bytes[start + i] !== id.charCodeAt(i)) return false;
    return true;
  }

  #slotHash(slot: number): number {
    return bytesHash(this.#bytes, this.#starts[slot] as number, this.#starts[slot + 1] as number);
  }

  /** Puts `slot` at the first free position of its probe sequence. */
  #place(slot: number): void {
    const positions = this.#positions;
    const mask = positions.length - 1;
    let p = this.#slotHash(slot) & mask;
    while ((positions[p] as number) >= 0) p = (p + 1) & mask;
    positions[p] = slot;
  }

  /** A fresh table for the held slots (removed positions dropped), at most half full. */
  #rehash(): void {
    const old = this.#positions;
    let held = 0;
    for (const slot of old) if (slot >= 0) held++;
    this.#positions = new Int32Array(tableSize(held + 1)).fill(EMPTY);
    for (const slot of old) if (slot >= 0) this.#place(slot);
    this.#filled = held;
  }
}
