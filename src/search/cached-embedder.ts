import { createHash } from 'node:crypto';
import type { LRUCache } from 'lru-cache';
import { entryLru } from '../util/entry-lru.ts';
import { type Embedder, EmbedderUnavailable } from './embedder.ts';

/**
 * An {@link Embedder} that remembers the last `maxEntries` vectors it was given, keyed by a
 * SHA-256 of model and text. Each call sends the inner embedder only the texts it has not
 * seen (each once, however often the call repeats it), in one call. `maxEntries = 0` disables
 * the memory but keeps the deduplication within a call. Callers own the arrays they get: the
 * cache keeps its own copies.
 */
export class CachedEmbedder implements Embedder {
  readonly #inner: Embedder;
  readonly #cache: LRUCache<string, Float32Array> | null;

  constructor(inner: Embedder, maxEntries: number) {
    this.#inner = inner;
    this.#cache = maxEntries > 0 ? entryLru(Math.floor(maxEntries)) : null;
  }

  /** The inner embedder's model. */
  get model(): string {
    return this.#inner.model;
  }

  /** Vectors held now (0 when disabled). */
  get size(): number {
    return this.#cache?.size ?? 0;
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    const model = this.#inner.model;
    const out = new Array<Float32Array | undefined>(texts.length);
    // Misses by key: the text to embed and every position waiting for it.
    const misses = new Map<string, { text: string; positions: number[] }>();
    texts.forEach((text, i) => {
      const key = keyOf(model, text);
      const hit = this.#cache?.get(key);
      if (hit) {
        out[i] = hit.slice();
        return;
      }
      const miss = misses.get(key);
      if (miss) miss.positions.push(i);
      else misses.set(key, { text, positions: [i] });
    });
    if (misses.size > 0) {
      const pending = [...misses];
      const vectors = await this.#inner.embed(pending.map(([, miss]) => miss.text));
      if (vectors.length !== pending.length) {
        throw new EmbedderUnavailable(
          `embedder returned ${vectors.length} vectors for ${pending.length} texts`,
        );
      }
      pending.forEach(([key, { positions }], j) => {
        const vector = vectors[j] as Float32Array;
        this.#cache?.set(key, vector.slice());
        positions.forEach((position, k) => {
          out[position] = k === 0 ? vector : vector.slice();
        });
      });
    }
    // Every position is either a hit or one of the misses' positions.
    return out as Float32Array[];
  }
}

/** Cache key of a text's vector under a model. */
function keyOf(model: string, text: string): string {
  return createHash('sha256').update(model).update('\0').update(text).digest('base64');
}
