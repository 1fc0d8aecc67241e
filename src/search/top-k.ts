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
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let least = i;
      if (l < size && this.#below(l, least)) least = l;
      if (r < size && this.#below(r, least)) least = r;
      if (least === i) break;
      this.#swap(i, least);
      i = least;
    }
  }

  /** The kept entries, best first. */
  sorted(): Array<{ slot: number; score: number }> {
    return this.#slots
      .map((slot, i) => ({ slot, score: this.#scores[i] as number }))
      .sort((a, b) => b.score - a.score || b.slot - a.slot);
  }
}
