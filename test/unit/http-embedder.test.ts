/**
 * The HTTP embedder against a local server speaking the OpenAI embeddings wire format:
 * request shape, ordering, chunking, timeouts, error statuses, strict answer checks and the
 * circuit breaker.
 */

import assert from 'node:assert/strict';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { EmbedderUnavailable } from '../../src/search/embedder.ts';
import { HttpEmbedder, type HttpEmbedderOptions } from '../../src/search/http-embedder.ts';

/** One request the server received. */
interface Received {
  method: string | undefined;
  path: string | undefined;
  headers: IncomingHttpHeaders;
  body: { model?: unknown; input?: unknown };
}

type Handler = (received: Received, res: ServerResponse) => void;

/** A deterministic 3-dimensional vector of a text. */
const vectorOf = (text: string): number[] => [text.length, text.charCodeAt(0) || 0, 0.5];

/** The OpenAI answer for `input`, optionally shuffled. */
function answer(input: string[], shuffle = false): unknown {
  const data = input.map((text, index) => ({
    object: 'embedding',
    index,
    embedding: vectorOf(text),
  }));
  if (shuffle) data.reverse();
  return { object: 'list', data, model: 'm', usage: { prompt_tokens: 1, total_tokens: 1 } };
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
};

/** The normal endpoint: answers every request in order. */
const openAi: Handler = (received, res) => json(res, 200, answer(received.body.input as string[]));

const servers: { close: () => Promise<void> }[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** A server on 127.0.0.1 (any port) whose handler the test can swap. */
async function startServer(initial: Handler = openAi): Promise<{
  url: string;
  requests: Received[];
  handle: (handler: Handler) => void;
}> {
  let handler = initial;
  const requests: Received[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received: Received = {
        method: req.method,
        path: req.url,
        headers: req.headers,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
      };
      requests.push(received);
      handler(received, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  servers.push({
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
  return {
    url: `http://127.0.0.1:${port}/v1/embeddings`,
    requests,
    handle: (h) => {
      handler = h;
    },
  };
}

const embedder = (url: string, options: Partial<HttpEmbedderOptions> = {}): HttpEmbedder =>
  new HttpEmbedder({ url, model: 'test-model', timeoutMs: 2_000, failures: 100, ...options });

const rejectsUnavailable = (promise: Promise<unknown>, message?: RegExp): Promise<void> =>
  assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof EmbedderUnavailable, `not EmbedderUnavailable: ${String(err)}`);
    if (message) assert.match(err.message, message);
    return true;
  });

describe('HttpEmbedder', () => {
  it('posts { model, input } as JSON with the bearer key and returns one vector per text', async () => {
    const server = await startServer();
    const e = embedder(server.url, { apiKey: 'sk-secret' });
    const vectors = await e.embed(['alpha', 'be']);
    assert.equal(server.requests.length, 1);
    const [req] = server.requests;
    assert.ok(req);
    assert.equal(req.method, 'POST');
    assert.equal(req.path, '/v1/embeddings');
    assert.equal(req.headers.authorization, 'Bearer sk-secret');
    assert.match(String(req.headers['content-type']), /^application\/json/);
    assert.deepEqual(req.body, { model: 'test-model', input: ['alpha', 'be'] });
    assert.equal(e.model, 'test-model');
    assert.equal(vectors.length, 2);
    assert.ok(vectors[0] instanceof Float32Array);
    assert.deepEqual([...(vectors[0] ?? [])], vectorOf('alpha'));
    assert.deepEqual([...(vectors[1] ?? [])], vectorOf('be'));
  });

  it('sends no Authorization header without a key', async () => {
    const server = await startServer();
    await embedder(server.url).embed(['x']);
    await embedder(server.url, { apiKey: '' }).embed(['y']);
    assert.equal(server.requests.length, 2);
    for (const req of server.requests) assert.equal(req.headers.authorization, undefined);
  });

  it('orders the vectors by index when the server shuffles them', async () => {
    const server = await startServer((r, res) =>
      json(res, 200, answer(r.body.input as string[], true)),
    );
    const texts = ['a', 'bb', 'ccc', 'dddd', 'eeeee'];
    const vectors = await embedder(server.url).embed(texts);
    assert.deepEqual(
      vectors.map((v) => [...v]),
      texts.map(vectorOf),
    );
  });

  it('splits 300 texts into requests of at most 128, in order', async () => {
    const server = await startServer();
    const texts = Array.from({ length: 300 }, (_, i) => 'x'.repeat(i + 1));
    const vectors = await embedder(server.url).embed(texts);
    assert.deepEqual(
      server.requests.map((r) => (r.body.input as string[]).length),
      [128, 128, 44],
    );
    assert.deepEqual(
      server.requests.flatMap((r) => r.body.input as string[]),
      texts,
    );
    assert.equal(vectors.length, 300);
    for (const [i, v] of vectors.entries()) assert.equal(v[0], i + 1);
  });

  it('sends no request for no texts', async () => {
    const server = await startServer();
    assert.deepEqual(await embedder(server.url).embed([]), []);
    assert.equal(server.requests.length, 0);
  });

  it('fails with EmbedderUnavailable within about the timeout when the server never answers', async () => {
    const server = await startServer(() => {
      // Never answers.
    });
    const started = performance.now();
    await rejectsUnavailable(
      embedder(server.url, { timeoutMs: 200 }).embed(['x']),
      /timed out after 200 ms/,
    );
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 150, `failed too early: ${elapsed} ms`);
    assert.ok(elapsed < 1_500, `failed too late: ${elapsed} ms`);
  });

  it('fails with EmbedderUnavailable carrying the status, never the key, on a 500', async () => {
    const server = await startServer((r, res) =>
      json(res, 500, { error: { message: `boom for ${r.headers.authorization}` } }),
    );
    await assert.rejects(
      embedder(server.url, { apiKey: 'sk-very-secret' }).embed(['x']),
      (err: unknown) => {
        assert.ok(err instanceof EmbedderUnavailable);
        assert.equal(err.status, 500);
        assert.match(err.message, /500/);
        assert.doesNotMatch(err.message, /sk-very-secret/);
        assert.doesNotMatch(JSON.stringify(err), /sk-very-secret/);
        return true;
      },
    );
  });

  it('fails with EmbedderUnavailable when nothing listens', async () => {
    const server = await startServer();
    await Promise.all(servers.splice(-1).map((s) => s.close()));
    await rejectsUnavailable(embedder(server.url).embed(['x']), /request failed/);
  });

  it('rejects malformed answers with EmbedderUnavailable', async () => {
    const server = await startServer();
    const e = embedder(server.url);
    const item = (index: number, embedding: unknown) => ({ index, embedding });
    const cases: [string, RegExp, (input: string[]) => unknown][] = [
      ['not JSON', /not JSON/, () => 'not json {'],
      ['no data', /no data list/, () => ({ object: 'list' })],
      ['null body', /no data list/, () => null],
      ['data not a list', /no data list/, () => ({ data: { 0: [1] } })],
      ['too few vectors', /1 vectors for 2 inputs/, () => ({ data: [item(0, [1, 2])] })],
      [
        'too many vectors',
        /3 vectors for 2 inputs/,
        () => ({ data: [0, 1, 2].map((i) => item(i, [1])) }),
      ],
      ['string values', /non-number/, (input) => ({ data: input.map((_, i) => item(i, ['0.1'])) })],
      ['"NaN" values', /non-number/, (input) => ({ data: input.map((_, i) => item(i, ['NaN'])) })],
      ['null values', /non-number/, (input) => ({ data: input.map((_, i) => item(i, [null])) })],
      [
        'float32 overflow',
        /non-finite/,
        (input) => ({ data: input.map((_, i) => item(i, [1e300])) }),
      ],
      ['empty vectors', /not a list/, (input) => ({ data: input.map((_, i) => item(i, [])) })],
      ['base64 vector', /not a list/, (input) => ({ data: input.map((_, i) => item(i, 'AAA=')) })],
      [
        'mixed dimensions',
        /2 dimensions, not 1/,
        (input) => ({ data: input.map((_, i) => item(i, i ? [1, 2] : [1])) }),
      ],
      ['repeated index', /index 0 repeated/, (input) => ({ data: input.map(() => item(0, [1])) })],
      [
        'index out of range',
        /no index in 0\.\.1/,
        (input) => ({ data: input.map((_, i) => item(i + 1, [1])) }),
      ],
      ['missing index', /no index/, (input) => ({ data: input.map(() => ({ embedding: [1] })) })],
      ['null item', /no index/, (input) => ({ data: input.map(() => null) })],
    ];
    for (const [name, message, make] of cases) {
      server.handle((r, res) => json(res, 200, make(r.body.input as string[])));
      await assert.rejects(
        e.embed(['one', 'two']),
        (err: unknown) => err instanceof EmbedderUnavailable && message.test(err.message),
        name,
      );
    }
  });

  it('rejects vectors whose dimension changes between chunks', async () => {
    let calls = 0;
    const server = await startServer((r, res) => {
      const dims = calls++ === 0 ? 3 : 4;
      const input = r.body.input as string[];
      json(res, 200, {
        data: input.map((_, index) => ({ index, embedding: new Array(dims).fill(0.1) })),
      });
    });
    await rejectsUnavailable(
      embedder(server.url, { batchSize: 2 }).embed(['a', 'b', 'c']),
      /dimensions/,
    );
  });

  it('opens the circuit after consecutive failures and closes it after a half-open success', async () => {
    let down = true;
    const server = await startServer((r, res) =>
      down ? json(res, 503, { error: 'overloaded' }) : openAi(r, res),
    );
    const e = embedder(server.url, { failures: 3, halfOpenAfterMs: 300 });
    for (let i = 0; i < 3; i++) await rejectsUnavailable(e.embed(['x']), /503/);
    assert.equal(server.requests.length, 3);

    // Open: fails at once, without a request.
    const started = performance.now();
    await rejectsUnavailable(e.embed(['x']), /circuit open/);
    assert.ok(performance.now() - started < 50);
    assert.equal(server.requests.length, 3);

    // After halfOpenAfter one trial goes through; its success closes the circuit.
    down = false;
    await new Promise((resolve) => setTimeout(resolve, 350));
    assert.equal((await e.embed(['x'])).length, 1);
    assert.equal(server.requests.length, 4);
    assert.equal((await e.embed(['y', 'z'])).length, 2);
    assert.equal(server.requests.length, 5);
  });

  it('reopens the circuit when the half-open trial fails', async () => {
    const server = await startServer((_r, res) => json(res, 503, {}));
    const e = embedder(server.url, { failures: 2, halfOpenAfterMs: 200 });
    for (let i = 0; i < 2; i++) await rejectsUnavailable(e.embed(['x']), /503/);
    await new Promise((resolve) => setTimeout(resolve, 250));
    await rejectsUnavailable(e.embed(['x']), /503/);
    assert.equal(server.requests.length, 3);
    await rejectsUnavailable(e.embed(['x']), /circuit open/);
    assert.equal(server.requests.length, 3);
  });

  it('does not open the circuit on answers that refuse the input (400, 413, 422)', async () => {
    const server = await startServer((_r, res) =>
      json(res, 400, { error: { message: 'input too long' } }),
    );
    const e = embedder(server.url, { failures: 2, halfOpenAfterMs: 60_000 });
    for (let i = 0; i < 5; i++) {
      await assert.rejects(e.embed(['x']), (err: unknown) => {
        assert.ok(err instanceof EmbedderUnavailable);
        assert.equal(err.status, 400);
        assert.match(err.message, /400: \{"error":\{"message":"input too long"\}\}/);
        return true;
      });
    }
    assert.equal(server.requests.length, 5);
  });
});
