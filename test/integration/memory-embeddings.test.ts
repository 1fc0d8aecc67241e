/**
 * The memory service with an embedder, over SQLite: vectors are computed before each write
 * (one call per batch), re-computed when the content changes and kept when it does not, and an
 * embedder failure stores the memory without a vector instead of failing the write.
 */

import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { EngramError } from '../../src/errors.ts';
import { Idempotency } from '../../src/memory/idempotency.ts';
import { MemoryService } from '../../src/memory/memory-service.ts';
import { type Embedder, EmbedderUnavailable } from '../../src/search/embedder.ts';
import type { Store } from '../../src/store/store.ts';
import { FakeClock } from '../helpers/app.ts';
import { openSqlite } from '../helpers/stores.ts';

/** An embedder that records its calls; a text's vector is [length, first char code, 1]. */
class FakeEmbedder implements Embedder {
  readonly model = 'fake-model';
  readonly calls: string[][] = [];
  failure: unknown = null;
  async embed(texts: string[]): Promise<Float32Array[]> {
    this.calls.push([...texts]);
    if (this.failure !== null) throw this.failure;
    return texts.map(vectorOf);
  }
}

const vectorOf = (text: string): Float32Array =>
  new Float32Array([text.length, text.charCodeAt(0), 1]);

const disposers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(disposers.splice(0).map((d) => d()));
});

/** A service over a fresh SQLite store, with the given embedder. */
async function setup(
  embedder: Embedder | null,
  onEmbedError: (err: unknown) => void = () => undefined,
): Promise<{ service: MemoryService; store: Store; errors: unknown[] }> {
  const { store, dispose } = await openSqlite();
  disposers.push(dispose);
  const clock = new FakeClock();
  const errors: unknown[] = [];
  const service = new MemoryService(store, clock, new Idempotency(store, clock, 3_600_000), {
    deleteGraceMs: 86_400_000,
    embedder,
    onEmbedError: (err) => {
      errors.push(err);
      onEmbedError(err);
    },
  });
  return { service, store, errors };
}

const stored = async (store: Store, id: string): Promise<number[] | null> => {
  const row = await store.getMemory('acme', id);
  assert.ok(row, `memory ${id} is stored`);
  return row.embedding ? [...row.embedding] : null;
};

const values = (v: Float32Array | null): number[] | null => (v ? [...v] : null);

describe('MemoryService with an embedder', () => {
  it('stores the vector of a created memory', async () => {
    const embedder = new FakeEmbedder();
    const { service, store, errors } = await setup(embedder);
    const row = await service.create('acme', { userId: 'u1', content: 'likes tea' });
    assert.deepEqual(embedder.calls, [['likes tea']]);
    assert.deepEqual(values(row.embedding), [...vectorOf('likes tea')]);
    assert.deepEqual(await stored(store, row.id), [...vectorOf('likes tea')]);
    assert.deepEqual(errors, []);
  });

  it('keeps the vector out of the remembered idempotent response', async () => {
    const embedder = new FakeEmbedder();
    const { service, store } = await setup(embedder);
    const row = await service.create(
      'acme',
      { userId: 'u1', content: 'likes tea' },
      { key: 'k1', fingerprint: 'f1' },
    );
    assert.ok(row.embedding);
    const record = await store.getIdempotency('acme', 'k1', Date.parse('2026-01-01T00:00:00Z'));
    assert.ok(record);
    assert.equal('embedding' in JSON.parse(record.body), false);
  });

  it('embeds a whole batch in one call, each memory getting its own vector', async () => {
    const embedder = new FakeEmbedder();
    const { service, store } = await setup(embedder);
    const contents = ['alpha', 'bravo two', 'charlie three', 'alpha'];
    const rows = await service.createBatch(
      'acme',
      contents.map((content) => ({ userId: 'u1', content })),
    );
    assert.deepEqual(embedder.calls, [contents]);
    for (const [i, row] of rows.entries()) {
      const content = contents[i] ?? '';
      assert.equal(row.content, content);
      assert.deepEqual(values(row.embedding), [...vectorOf(content)]);
      assert.deepEqual(await stored(store, row.id), [...vectorOf(content)]);
    }
  });

  it('re-embeds a changed content and keeps the vector on other changes', async () => {
    const embedder = new FakeEmbedder();
    const { service, store } = await setup(embedder);
    const created = await service.create('acme', { userId: 'u1', content: 'likes tea' });

    const reworded = await service.update('acme', created.id, { content: 'prefers coffee' });
    assert.deepEqual(embedder.calls.at(-1), ['prefers coffee']);
    assert.deepEqual(values(reworded.embedding), [...vectorOf('prefers coffee')]);
    assert.deepEqual(await stored(store, created.id), [...vectorOf('prefers coffee')]);

    const calls = embedder.calls.length;
    const tagged = await service.update('acme', created.id, { tags: ['drinks'], pinned: true });
    assert.equal(embedder.calls.length, calls, 'a tags-only update does not embed');
    assert.deepEqual(values(tagged.embedding), [...vectorOf('prefers coffee')]);
    assert.deepEqual(await stored(store, created.id), [...vectorOf('prefers coffee')]);

    // The same content again keeps its vector, even while the embedder is down.
    embedder.failure = new EmbedderUnavailable('down');
    const same = await service.update('acme', created.id, { content: 'prefers coffee' });
    assert.deepEqual(values(same.embedding), [...vectorOf('prefers coffee')]);
    assert.deepEqual(await stored(store, created.id), [...vectorOf('prefers coffee')]);
  });

  it('does not call the embedder for a rejected write', async () => {
    const embedder = new FakeEmbedder();
    const { service } = await setup(embedder);
    await assert.rejects(service.create('acme', { userId: 'u1', content: '   ' }), EngramError);
    await assert.rejects(
      service.createBatch('acme', [
        { userId: 'u1', content: 'fine' },
        { userId: 'u1', content: '' },
      ]),
      EngramError,
    );
    assert.deepEqual(embedder.calls, []);
  });

  it('stores memories without a vector when the embedder fails, and reports the failure', async () => {
    const embedder = new FakeEmbedder();
    const failure = new EmbedderUnavailable('embeddings endpoint answered 503');
    embedder.failure = failure;
    const { service, store, errors } = await setup(embedder);

    const row = await service.create('acme', { userId: 'u1', content: 'likes tea' });
    assert.equal(row.embedding, null);
    assert.equal((await store.getMemory('acme', row.id))?.content, 'likes tea');
    assert.equal(await stored(store, row.id), null);

    const rows = await service.createBatch('acme', [
      { userId: 'u1', content: 'one' },
      { userId: 'u2', content: 'two' },
    ]);
    assert.equal(rows.length, 2);
    for (const r of rows) {
      assert.equal(r.embedding, null);
      assert.equal(await stored(store, r.id), null);
    }
    assert.deepEqual(errors, [failure, failure]);
  });

  it('drops the old vector when the content changes while the embedder fails', async () => {
    const embedder = new FakeEmbedder();
    const { service, store, errors } = await setup(embedder);
    const created = await service.create('acme', { userId: 'u1', content: 'likes tea' });
    assert.ok(created.embedding);
    embedder.failure = new Error('socket hang up');
    const updated = await service.update('acme', created.id, { content: 'prefers coffee' });
    assert.equal(updated.content, 'prefers coffee');
    assert.equal(updated.version, 2);
    assert.equal(updated.embedding, null);
    assert.equal(await stored(store, created.id), null);
    assert.equal(errors.length, 1);

    // Once the embedder is back, the same content gets the vector it lacks.
    embedder.failure = null;
    const healed = await service.update('acme', created.id, { content: 'prefers coffee' });
    assert.deepEqual(values(healed.embedding), [...vectorOf('prefers coffee')]);
  });

  it('treats a wrong number of vectors, and a throwing reporter, as a failure that stores anyway', async () => {
    const short: Embedder = { model: 'm', embed: async () => [] };
    const { service, store, errors } = await setup(short, () => {
      throw new Error('reporter broke');
    });
    const row = await service.create('acme', { userId: 'u1', content: 'likes tea' });
    assert.equal(row.embedding, null);
    assert.ok(await store.getMemory('acme', row.id));
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof EmbedderUnavailable);
  });

  it('stores no vectors without an embedder', async () => {
    const { service, store, errors } = await setup(null);
    const row = await service.create('acme', { userId: 'u1', content: 'likes tea' });
    const updated = await service.update('acme', row.id, { content: 'prefers coffee' });
    assert.equal(row.embedding, null);
    assert.equal(updated.embedding, null);
    assert.equal(await stored(store, row.id), null);
    assert.deepEqual(errors, []);
  });
});
