/**
 * The pure parts of the cache stack: entry encoding for L2, canonical parameters and their
 * hash (cache keys), the byte bound of L1, and single flight.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type CacheEntry, decodeEntry, encodeEntry, etagOf } from '../../src/cache/cache-entry.ts';
import {
  canonicalJson,
  memoryKey,
  paramsHash,
  queryKey,
  userScope,
} from '../../src/cache/cache-keys.ts';
import { newCounters } from '../../src/cache/cache-stats.ts';
import { L1Cache } from '../../src/cache/l1-cache.ts';
import { SingleFlight } from '../../src/cache/single-flight.ts';

const time = fc.integer({ min: 0, max: 8.64e15 });
const entryArb: fc.Arbitrary<CacheEntry> = fc
  .record({
    body: fc.uint8Array({ maxLength: 4096 }),
    etag: fc.option(fc.string({ unit: 'grapheme-ascii', maxLength: 200 }), { nil: undefined }),
    version: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
    storedAt: time,
    freshUntil: time,
    validUntil: fc.oneof(fc.constant(0), time),
  })
  .map(({ body, etag, ...rest }) => {
    const bytes = Buffer.from(body);
    return { ...rest, body: bytes, etag: etag ?? etagOf(bytes) };
  });

describe('cache entry encoding', () => {
  it('decodes what it encodes, for any entry', () => {
    fc.assert(
      fc.property(entryArb, (entry) => {
        const decoded = decodeEntry(encodeEntry(entry));
        assert.ok(decoded);
        assert.equal(decoded.version, entry.version);
        assert.equal(decoded.storedAt, entry.storedAt);
        assert.equal(decoded.freshUntil, entry.freshUntil);
        assert.equal(decoded.validUntil, entry.validUntil);
        assert.equal(decoded.etag, entry.etag);
        assert.ok(decoded.body.equals(entry.body));
      }),
      { numRuns: 500 },
    );
  });

  it('answers null (never throws) for bytes that are not an entry', () => {
    assert.equal(decodeEntry(Buffer.alloc(0)), null);
    assert.equal(decodeEntry(Buffer.alloc(32)), null);
    const truncated = encodeEntry({
      body: Buffer.from('{"a":1}'),
      etag: etagOf(Buffer.from('{"a":1}')),
      version: 7,
      storedAt: 1,
      freshUntil: 2,
      validUntil: 0,
    }).subarray(0, 40);
    assert.equal(decodeEntry(truncated), null);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const decoded = decodeEntry(Buffer.from(bytes));
        if (decoded !== null) assert.ok(bytes.length >= 33);
      }),
    );
  });

  it('gives a strong, quoted, 22-character ETag that changes with the body', () => {
    const a = etagOf(Buffer.from('{"content":"a"}'));
    assert.match(a, /^"[A-Za-z0-9_-]{22}"$/);
    assert.equal(etagOf(Buffer.from('{"content":"a"}')), a);
    assert.notEqual(etagOf(Buffer.from('{"content":"b"}')), a);
  });
});

/** The same object with its keys in another order, at every level. */
function reordered(value: unknown, seed: number): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => reordered(v, seed + 1));
  const entries = Object.entries(value as Record<string, unknown>);
  // A deterministic shuffle driven by the seed.
  for (let i = entries.length - 1; i > 0; i--) {
    const j = (seed * 31 + i * 17) % (i + 1);
    [entries[i], entries[j]] = [entries[j] as [string, unknown], entries[i] as [string, unknown]];
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) {
    Object.defineProperty(out, k, {
      value: reordered(v, seed + 1),
      enumerable: true,
      configurable: true,
      writable: true,
    });
  }
  return out;
}

describe('cache keys', () => {
  const params = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), {
    maxKeys: 8,
  });

  it('hashes equal parameters equally whatever their key order', () => {
    fc.assert(
      fc.property(params, fc.nat(1000), (p, seed) => {
        const q = reordered(p, seed);
        assert.equal(canonicalJson(q), canonicalJson(p));
        assert.equal(paramsHash(q), paramsHash(p));
      }),
      { numRuns: 500 },
    );
  });

  it('hashes different parameters differently', () => {
    fc.assert(
      fc.property(params, params, (a, b) => {
        fc.pre(canonicalJson(a) !== canonicalJson(b));
        assert.notEqual(paramsHash(a), paramsHash(b));
      }),
      { numRuns: 500 },
    );
  });

  it('is canonical JSON of the same value, undefined members left out', () => {
    fc.assert(
      fc.property(params, (p) => {
        assert.deepEqual(JSON.parse(canonicalJson(p)), JSON.parse(JSON.stringify(p)));
      }),
    );
    assert.equal(
      canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: undefined } }),
      '{"a":{"d":[1,{"x":1,"y":2}]},"b":1}',
    );
    assert.equal(
      paramsHash({ userId: 'u', limit: 50, kind: undefined }),
      paramsHash({ limit: 50, userId: 'u' }),
    );
  });

  it('keeps list filters that differ in any field apart, and arrays in order', () => {
    const base = { userId: 'u1', limit: 50 };
    const variants = [
      base,
      { ...base, limit: 51 },
      { ...base, userId: 'u2' },
      { ...base, kind: 'fact' },
      { ...base, tags: ['a'] },
      { ...base, tags: ['a', 'b'] },
      { ...base, tags: ['b', 'a'] },
      { ...base, pinned: true },
      { ...base, pinned: false },
      { ...base, beforeId: '01J0000000000000000000000A' },
      { ...base, createdFrom: 0 },
      { ...base, createdTo: 0 },
      { ...base, limit: '50' },
    ];
    const keys = variants.map((v) => queryKey('list', 'acme', 'u1', v));
    assert.equal(new Set(keys).size, variants.length);
    assert.notEqual(queryKey('list', 'acme', 'u1', base), queryKey('search', 'acme', 'u1', base));
    assert.notEqual(queryKey('list', 'acme', 'u1', base), queryKey('list', 'other', 'u1', base));
    assert.notEqual(memoryKey('acme', 'X'), memoryKey('other', 'X'));
    assert.equal(userScope('acme', 'u1'), 'acme/u1');
  });
});

const entry = (bytes: number, version = 1): CacheEntry => {
  const body = Buffer.alloc(bytes, 0x61);
  return { body, etag: etagOf(body), version, storedAt: 0, freshUntil: 1, validUntil: 0 };
};

describe('L1 byte bound', () => {
  it('never holds more than maxBytes, evicting the least recently used', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2_000, max: 50_000 }),
        fc.array(fc.tuple(fc.nat(40), fc.integer({ min: 1, max: 6_000 })), {
          minLength: 1,
          maxLength: 200,
        }),
        (maxBytes, writes) => {
          const counters = newCounters();
          const l1 = new L1Cache(maxBytes, 60_000, counters);
          for (const [k, size] of writes) {
            l1.set(`key-${k}`, entry(size));
            assert.ok(l1.bytes <= maxBytes, `${l1.bytes} > ${maxBytes}`);
            assert.equal(counters.l1Bytes, l1.bytes);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('evicts old entries when filled beyond its bound, and counts them', () => {
    const counters = newCounters();
    const l1 = new L1Cache(10_000, 60_000, counters);
    for (let i = 0; i < 50; i++) l1.set(`k${i}`, entry(1_000));
    assert.ok(l1.bytes <= 10_000);
    // Each entry costs its body, its key (2 bytes a character) and a fixed overhead.
    assert.equal(l1.size, Math.floor(10_000 / (1_000 + 2 * 3 + 160)));
    assert.equal(counters.l1Evictions, 50 - l1.size);
    assert.equal(l1.get('k0'), undefined);
    assert.ok(l1.get('k49'));
    // An entry larger than the whole bound is not kept (and evicts nothing).
    const held = l1.size;
    l1.set('huge', entry(20_000));
    assert.equal(l1.get('huge'), undefined);
    assert.equal(l1.size, held);
    l1.clear();
    assert.equal(l1.bytes, 0);
    assert.equal(counters.l1Bytes, 0);
  });

  it('never replaces an entry with one of an older version', () => {
    const l1 = new L1Cache(100_000, 60_000, newCounters());
    l1.set('k', entry(10, 5));
    l1.set('k', entry(20, 4));
    assert.equal(l1.get('k')?.version, 5);
    l1.set('k', entry(30, 6));
    assert.equal(l1.get('k')?.version, 6);
    assert.equal(l1.get('k')?.body.length, 30);
  });

  it("keeps a body sliced from a larger buffer in memory of its own (never pins the pool's slab)", () => {
    const l1 = new L1Cache(100_000, 60_000, newCounters());
    const pooled = Buffer.from('{"id":"m1","content":"a short body"}');
    assert.ok(pooled.buffer.byteLength > pooled.byteLength, 'Buffer.from slices the pool');
    l1.set('k', { ...entry(0), body: pooled });
    const kept = l1.get('k')?.body as Buffer;
    assert.deepEqual(kept, pooled);
    assert.equal(kept.buffer.byteLength, kept.byteLength);
    // A body that owns its memory is kept as it is.
    const own = Buffer.allocUnsafeSlow(8).fill(1);
    l1.set('o', { ...entry(0), body: own });
    assert.equal(l1.get('o')?.body, own);
  });
});

describe('SingleFlight', () => {
  it('runs one load per key at a time and shares its result', async () => {
    const flights = new SingleFlight<number>();
    let loads = 0;
    let release!: (n: number) => void;
    const load = () => {
      loads++;
      return new Promise<number>((resolve) => {
        release = resolve;
      });
    };
    const runs = Array.from({ length: 100 }, () => flights.run('k', load));
    assert.equal(loads, 1);
    assert.deepEqual(
      runs.map((r) => r.joined),
      [false, ...Array(99).fill(true)],
    );
    assert.equal(flights.size, 1);
    const other = flights.run('other', async () => 7);
    assert.equal(other.joined, false);
    assert.equal(loads, 1);
    release(42);
    assert.deepEqual(await Promise.all(runs.map((r) => r.promise)), Array(100).fill(42));
    assert.equal(await other.promise, 7);
    assert.equal(flights.size, 0);
    // Settled: the next call loads again.
    const next = flights.run('k', async () => 43);
    assert.equal(next.joined, false);
    assert.equal(await next.promise, 43);
  });

  it('shares a failure with every joined caller, then forgets it', async () => {
    const flights = new SingleFlight<number>();
    let loads = 0;
    const failing = () => {
      loads++;
      return new Promise<number>((_, reject) => setImmediate(() => reject(new Error('down'))));
    };
    const runs = Array.from({ length: 10 }, () => flights.run('k', failing));
    const results = await Promise.allSettled(runs.map((r) => r.promise));
    assert.equal(loads, 1);
    assert.ok(results.every((r) => r.status === 'rejected' && r.reason.message === 'down'));
    assert.equal(flights.size, 0);
    const retry = flights.run('k', async () => 1);
    assert.equal(retry.joined, false);
    assert.equal(await retry.promise, 1);
  });
});
