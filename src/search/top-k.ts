/**
 * The k best (slot, score) pairs seen, kept in a binary min-heap: O(n log k) for n offers.
 * Ties go to the higher slot (the newer memory).
 */
export class TopK {
  readonly #k: number;
  readonly #slots: number[] = [];
  readonly #scores: number[] = [];

  constructor(k: number) {
    this.#k = k;
  }

  // Whether entry a ranks below entry b.
  #below(a: number, b: number): boolean {
    const sa = this.#scores[a] as number;
    const sb = this.#scores[b] as number;
    return sa < sb || (sa === sb && (this.#slots[a] as number) < (this.#slots[b] as number));
  }

  #swap(a: number, b: number): void {
    const s = this.#slots[a] as number;
    this.#slots[a] = this.#slots[b] as number;
    this.#slots[b] = s;
    const v = this.#scores[a] as number;
    this.#scores[a] = this.#scores[b] as number;
    this.#scores[b] = v;
  }

  /** The score an entry must reach to be kept: the k-th best once k are held, else -∞. */
  floor(): number {
    return this.#slots.length < this.#k || this.#k <= 0
      ? Number.NEGATIVE_INFINITY
      : (this.#scores[0] as number);
  }

  /** Considers one candidate. */
  offer(slot: number, score: number): void {
    if (this.#k <= 0) return;
    const size = this.#slots.length;
    if (size < this.#k) {
      this.#slots.push(slot);
      this.#scores.push(score);
      let i = size;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!this.#below(i, parent)) break;
        this.#swap(i, parent);
        i = parent;
      }
      return;
    }
    const rootScore = this.#scores[0] as number;
    if (score < rootScore || (score === rootScore && slot < (this.#slots[0] as number))) return;
    this.#slots[0] = slot;
    this.#scores[0] = score;
    this.#siftDown(0, size);
  }

  /** The kept entries, best first. */
  sorted(): Array<{ slot: number; score: number }> {
    const n = this.#slots.length;
    const out = new Array<{ slot: number; score: number }>(n);
    // Pop the minimum into the back of the answer: heap order gives the sort.
    for (let end = this.#slots.length - 1; end >= 0; end--) {
      out[end] = { slot: this.#slots[0] as number, score: this.#scores[0] as number };
      const lastSlot = this.#slots.pop() as number;
      const lastScore = this.#scores.pop() as number;
      if (end === 0) break;
      this.#slots[0] = lastSlot;
      this.#scores[0] = lastScore;
      this.#siftDown(0, end);
    }
    // Ascending order is a valid min-heap: the entries are kept for later offers.
    for (let i = 0; i < n; i++) {
      const entry = out[n - 1 - i] as { slot: number; score: number };
      this.#slots.push(entry.slot);
      this.#scores.push(entry.score);
    }
    return out;
  }

  #siftDown(from: number, size: number): void {
    let i = from;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let least = i;
      if (l < size && this.#below(l, least)) least = l;
      if (r < size && this.#below(r, least)) least = r;
      if (least === i) return;
      this.#swap(i, least);
      i = least;
    }
  }
}
