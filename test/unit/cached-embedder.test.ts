/**
 * The embedding cache: hits never reach the inner embedder, misses reach it once per call
 * with each text once, a zero size disables it, and it holds at most its size.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CachedEmbedder } from '../../src/search/cached-embedder.ts';
import { type Embedder, EmbedderUnavailable } from '../../src/search/embedder.ts';

/** An embedder that records its calls; a text's vector is [length, first char code]. */
class FakeEmbedder implements Embedder {
  readonly calls: string[][] = [];
  readonly model: string;
  failing = false;
  constructor(model = 'fake-model') {
    this.model = model;
  }
  async embed(texts: string[]): Promise<Float32Array[]> {
    this.calls.push([...texts]);
    if (this.failing) throw new EmbedderUnavailable('down');
    return texts.map((t) => new Float32Array([t.length, t.charCodeAt(0) || 0]));
  }
}

const values = (vectors: Float32Array[]): number[][] => vectors.map((v) => [...v]);
const expected = (texts: string[]): number[][] =>
  texts.map((t) => [t.length, t.charCodeAt(0) || 0]);

describe('CachedEmbedder', () => {
  it('answers hits without calling the inner embedder', async () => {
    const inner = new FakeEmbedder();
    const cached = new CachedEmbedder(inner, 100);
    assert.equal(cached.model, 'fake-model');
    assert.deepEqual(values(await cached.embed(['a', 'bb'])), expected(['a', 'bb']));
    assert.deepEqual(values(await cached.embed(['bb', 'a'])), expected(['bb', 'a']));
    assert.deepEqual(inner.calls, [['a', 'bb']]);
    assert.equal(cached.size, 2);
  });

  it('sends only the misses, in one call, and keeps the input order', async () => {
    const inner = new FakeEmbedder();
    const cached = new CachedEmbedder(inner, 100);
    await cached.embed(['b', 'd']);
    const texts = ['a', 'b', 'c', 'd', 'e'];
    assert.deepEqual(values(await cached.embed(texts)), expected(texts));
    assert.deepEqual(inner.calls, [
      ['b', 'd'],
      ['a', 'c', 'e'],
    ]);
  });

  it('embeds a text repeated within a call once', async () => {
    const inner = new FakeEmbedder();
    const cached = new CachedEmbedder(inner, 100);
    const texts = ['x', 'yy', 'x', 'x', 'yy'];
    const vectors = await cached.embed(texts);
    assert.deepEqual(values(vectors), expected(texts));
    assert.deepEqual(inner.calls, [['x', 'yy']]);
    // Each position gets its own array.
    assert.notEqual(vectors[0], vectors[2]);
  });

  it('hands out copies: changing a returned vector does not change the cached one', async () => {
    const inner = new FakeEmbedder();
    const cached = new CachedEmbedder(inner, 100);
    const [first] = await cached.embed(['abc']);
    assert.ok(first);
    first.fill(0);
    const [again] = await cached.embed(['abc']);
    assert.deepEqual([...(again ?? [])], [3, 97]);
    again?.fill(0);
    assert.deepEqual(values(await cached.embed(['abc'])), [[3, 97]]);
    assert.equal(inner.calls.length, 1);
  });

  it('keys by model as well as text', async () => {
    const a = new FakeEmbedder('model-a');
    const b = new FakeEmbedder('model-b');
    const cachedA = new CachedEmbedder(a, 10);
    const cachedB = new CachedEmbedder(b, 10);
    await cachedA.embed(['same']);
    await cachedB.embed(['same']);
    assert.equal(a.calls.length, 1);
    assert.equal(b.calls.length, 1);
  });

  it('caches nothing with size 0, but still embeds a repeated text once per call', async () => {
    const inner = new FakeEmbedder();
    const cached = new CachedEmbedder(inner, 0);
    assert.deepEqual(values(await cached.embed(['a', 'a'])), expected(['a', 'a']));
    assert.deepEqual(values(await cached.embed(['a'])), expected(['a']));
    assert.deepEqual(inner.calls, [['a'], ['a']]);
    assert.equal(cached.size, 0);
  });

  it('holds at most its size, dropping the least recently used', async () => {
    const inner = new FakeEmbedder();
    const cached = new CachedEmbedder(inner, 2);
    await cached.embed(['a', 'b']);
    await cached.embed(['a']); // a is now more recent than b
    await cached.embed(['c']); // evicts b
    assert.equal(cached.size, 2);
    inner.calls.length = 0;
    await cached.embed(['a', 'c']);
    assert.deepEqual(inner.calls, []);
    await cached.embed(['b']);
    assert.deepEqual(inner.calls, [['b']]);
    assert.equal(cached.size, 2);
  });

  it('passes failures through and caches nothing from them', async () => {
    const inner = new FakeEmbedder();
    const cached = new CachedEmbedder(inner, 10);
    inner.failing = true;
    await assert.rejects(cached.embed(['a']), EmbedderUnavailable);
    assert.equal(cached.size, 0);
    inner.failing = false;
    assert.deepEqual(values(await cached.embed(['a'])), expected(['a']));
    assert.equal(inner.calls.length, 2);
  });

  it('rejects an inner answer with the wrong number of vectors', async () => {
    const inner: Embedder = { model: 'm', embed: async () => [new Float32Array([1])] };
    await assert.rejects(new CachedEmbedder(inner, 10).embed(['a', 'b']), EmbedderUnavailable);
  });

  it('does not call the inner embedder for no texts', async () => {
    const inner = new FakeEmbedder();
    assert.deepEqual(await new CachedEmbedder(inner, 10).embed([]), []);
    assert.equal(inner.calls.length, 0);
  });
});
