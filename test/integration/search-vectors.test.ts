/**
 * Vector similarity in search, end to end: Engram configured with ENGRAM_EMBEDDINGS_URL pointing
 * at a local server that speaks the OpenAI /v1/embeddings wire format. Its "model" maps words
 * of one concept (dog, puppy, canine) to one dimension, so a query can match a memory that
 * shares no word with it. When the endpoint dies, search answers without vectors.
 */

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type TestApp, testApp } from '../helpers/app.ts';

const CONCEPTS = [
  ['dog', 'dogs', 'puppy', 'canine', 'hound'],
  ['car', 'cars', 'vehicle', 'automobile'],
  ['paint', 'painting', 'fence'],
];
const DIMENSIONS = 8;

/** The test model: a concept's words share a dimension; other words hash to the rest. */
function embed(text: string): number[] {
  const v = new Array<number>(DIMENSIONS).fill(0);
  for (const word of text.toLowerCase().match(/[a-z]+/g) ?? []) {
    const concept = CONCEPTS.findIndex((c) => c.includes(word));
    if (concept >= 0) v[concept] = (v[concept] ?? 0) + 1;
    else {
      let h = 0;
      for (const ch of word) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
      const d = CONCEPTS.length + (h % (DIMENSIONS - CONCEPTS.length));
      v[d] = (v[d] ?? 0) + 0.2;
    }
  }
  return v;
}

describe('search with vectors (OpenAI-compatible embeddings endpoint)', () => {
  let server: Server;
  let t: TestApp;
  const requests: Array<{ model: string; input: string[] }> = [];

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        const parsed = JSON.parse(body) as { model: string; input: string[] };
        requests.push(parsed);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            object: 'list',
            model: parsed.model,
            data: parsed.input.map((text, index) => ({
              object: 'embedding',
              index,
              embedding: embed(text),
            })),
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    t = await testApp({
      env: {
        ENGRAM_EMBEDDINGS_URL: `http://127.0.0.1:${port}/v1/embeddings`,
        ENGRAM_EMBEDDINGS_MODEL: 'concept-test',
        ENGRAM_EMBEDDINGS_TIMEOUT_MS: '500',
      },
    });
    for (const content of ['I have a dog called Rex', 'I drive an old car', 'Paint the fence']) {
      const res = await t.call({
        method: 'POST',
        url: '/v1/memories',
        payload: { userId: 'vic', content },
      });
      assert.equal(res.statusCode, 201, res.body);
    }
  });

  after(async () => {
    await t.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const search = async (body: Record<string, unknown>) => {
    const res = await t.call({
      method: 'POST',
      url: '/v1/users/vic/memories/search',
      payload: body,
    });
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as {
      vector: boolean;
      items: Array<{
        memory: { content: string };
        explain?: { signals: { vector: { value: number }; text: { value: number } } };
      }>;
    };
  };

  it('finds a memory by meaning, with no word in common', async () => {
    const a = await search({ query: 'puppy', explain: true });
    assert.equal(a.vector, true);
    const first = a.items[0];
    assert.equal(first?.memory.content, 'I have a dog called Rex');
    assert.equal(first?.explain?.signals.text.value, 0);
    assert.ok((first?.explain?.signals.vector.value ?? 0) > 0.5);
    // The query was embedded with the configured model.
    assert.deepEqual(requests.at(-1), { model: 'concept-test', input: ['puppy'] });
  });

  it('embeds nothing when the vector weight is 0 or the query is empty', async () => {
    const before = requests.length;
    const a = await search({ query: 'puppy', weights: { vector: 0 }, explain: true });
    assert.equal(a.vector, false);
    // No word matches: the answer is filled by the other signals only.
    for (const item of a.items) {
      assert.equal(item.explain?.signals.text.value, 0);
      assert.equal(item.explain?.signals.vector.value, 0);
    }
    await search({ query: '' });
    assert.equal(requests.length, before);
  });

  it('answers without vectors when the endpoint is gone, and writes still succeed', async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const failures = t.ctx.search.embedFailures;
    const a = await search({ query: 'puppy dog' });
    assert.equal(a.vector, false);
    assert.equal(a.items[0]?.memory.content, 'I have a dog called Rex');
    assert.equal(t.ctx.search.embedFailures, failures + 1);
    const res = await t.call({
      method: 'POST',
      url: '/v1/memories',
      payload: { userId: 'vic', content: 'A kitten' },
    });
    assert.equal(res.statusCode, 201);
    const row = await t.ctx.store.getMemory('acme', (res.json() as { id: string }).id);
    assert.equal(row?.embedding, null);
    const stats = await t.call({ method: 'GET', url: '/v1/stats/cache' });
    assert.equal(stats.json().search.embedFailures, failures + 1);
  });
});
