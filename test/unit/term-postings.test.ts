/**
 * The off-heap postings (TermPostings): runs of entries per term, checked against a plain Map
 * model through random adds, releases and trims (moves, table growth, repacks), the entry
 * encoding, trim's shrinking, and many distinct terms.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { entryOf, entrySlot, entryTf, TermPostings } from '../../src/search/term-postings.ts';

/** What TermPostings should hold per term: live df and every entry, in insertion order. */
type Model = Map<string, { df: number; entries: number[] }>;

const SLOT_MAX = 2 ** 22 - 1;

const SMALL = ['a', 'b', 'z', 'é', 'café', '東京', 'naïve', '🙂', 'x'.repeat(300), 'Straße'];

/** A term: mostly from a small vocabulary (long runs), else a large one or any string. */
const termArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...SMALL) },
  { weight: 3, arbitrary: fc.nat(3_999).map((n) => `w${n}`) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }) },
);

const entryArb = fc.tuple(fc.nat(SLOT_MAX), fc.nat(600)).map(([slot, tf]) => entryOf(slot, tf));

type Op =
  | { kind: 'add'; term: string; entry: number }
  | { kind: 'release'; pick: number }
  | { kind: 'trim' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 80,
    arbitrary: fc.record({ kind: fc.constant('add'), term: termArb, entry: entryArb }),
  },
  { weight: 19, arbitrary: fc.record({ kind: fc.constant('release'), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('trim') }) },
) as fc.Arbitrary<Op>;

/** Applies one operation to both the postings and the model. */
function apply(p: TermPostings, model: Model, op: Op): void {
  if (op.kind === 'add') {
    p.add(op.term, op.entry);
    const m = model.get(op.term) ?? { df: 0, entries: [] };
    m.df++;
    m.entries.push(op.entry);
    model.set(op.term, m);
  } else if (op.kind === 'release') {
    const live = [...model.keys()].filter((t) => (model.get(t)?.df ?? 0) > 0);
    if (live.length === 0) return;
    const term = live[op.pick % live.length] as string;
    p.release(term);
    (model.get(term) as { df: number }).df--;
  } else {
    p.trim();
  }
}

/** Everything TermPostings tells about its terms agrees with the model. */
function check(p: TermPostings, model: Model): void {
  assert.equal(p.terms, model.size);
  const numbers = new Set<number>();
  for (const [term, m] of model) {
    const t = p.find(term);
    assert.ok(t >= 0 && t < p.terms, `term ${JSON.stringify(term)} not found`);
    numbers.add(t);
    assert.equal(p.df(t), m.df, `df of ${JSON.stringify(term)}`);
    assert.equal(p.length(t), m.entries.length);
    const run = p.entries.subarray(p.start(t), p.start(t) + p.length(t));
    assert.deepEqual([...run], m.entries, `run of ${JSON.stringify(term)}`);
    const slots = new Set(m.entries.map(entrySlot));
    for (const s of slots) assert.ok(p.holds(term, s));
    let missing = 0;
    while (slots.has(missing)) missing++;
    assert.equal(p.holds(term, missing), false);
  }
  assert.equal(numbers.size, model.size, 'two terms share a number');
  for (const absent of ['\u0000never', 'never added', '東京東京東京', '']) {
    if (model.has(absent)) continue;
    assert.equal(p.find(absent), -1);
    assert.equal(p.holds(absent, 0), false);
  }
  const pairs = (list: { df: number; length: number }[]): string[] =>
    list.map((r) => `${r.df}/${r.length}`).sort();
  const expected = [...model.values()].map((m) => ({ df: m.df, length: m.entries.length }));
  assert.deepEqual(pairs([...p.runs()]), pairs(expected));
}

describe('TermPostings: model-based', () => {
  it('random adds, releases and trims agree with a Map model (moves, growth, repacks)', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 100, maxLength: 2_000, size: 'max' }), (ops) => {
        const p = new TermPostings();
        const model: Model = new Map();
        for (const op of ops) {
          apply(p, model, op);
          if (op.kind === 'trim') check(p, model);
        }
        check(p, model);
      }),
      { numRuns: 100 },
    );
  });
});

describe('TermPostings: entries', () => {
  it('entryOf round-trips slot and tf; tf is capped at 511', () => {
    fc.assert(
      fc.property(fc.nat(SLOT_MAX), fc.nat(100_000), (slot, tf) => {
        const e = entryOf(slot, tf);
        assert.equal(entrySlot(e), slot);
        assert.equal(entryTf(e), Math.min(tf, 511));
        const stored = new Int32Array([e]);
        assert.equal(entrySlot(stored[0] as number), slot);
        assert.equal(entryTf(stored[0] as number), Math.min(tf, 511));
      }),
      { numRuns: 1_000 },
    );
    const top = new Int32Array([entryOf(SLOT_MAX, 511)])[0] as number;
    assert.equal(entrySlot(top), SLOT_MAX);
    assert.equal(entryTf(top), 511);
    assert.equal(entryTf(entryOf(7, 512)), 511);
    assert.equal(entryTf(entryOf(7, 0)), 0);
  });
});

describe('TermPostings: trim', () => {
  it('shrinks the arrays after many adds, stays readable, and keeps taking adds', () => {
    const p = new TermPostings();
    const model: Model = new Map();
    const add = (term: string, entry: number): void =>
      apply(p, model, { kind: 'add', term, entry });
    for (let i = 0; i < 20_000; i++) add(`t${i % 777}`, entryOf(i, (i % 9) + 1));
    for (let i = 0; i < 300; i++) apply(p, model, { kind: 'release', pick: i * 7 });
    check(p, model);
    const before = p.bytes;
    p.trim();
    assert.ok(p.bytes < before, `bytes ${p.bytes} not below ${before}`);
    check(p, model);
    const trimmed = p.bytes;
    p.trim();
    assert.equal(p.bytes, trimmed, 'a second trim changes nothing');
    check(p, model);
    for (let i = 0; i < 5_000; i++) add(i % 2 ? `t${i % 1_001}` : `new${i % 50}`, entryOf(i, 3));
    check(p, model);
    p.trim();
    check(p, model);
  });

  it('trims an empty index and then takes adds', () => {
    const p = new TermPostings();
    const model: Model = new Map();
    p.trim();
    check(p, model);
    for (let i = 0; i < 100; i++) apply(p, model, { kind: 'add', term: `k${i % 13}`, entry: i });
    check(p, model);
  });
});

describe('TermPostings: many terms', () => {
  it('50,000 distinct terms all findable with their df, each with its own number', () => {
    const p = new TermPostings();
    const n = 50_000;
    for (let i = 0; i < n; i++) for (let k = 0; k <= i % 3; k++) p.add(`t${i}`, entryOf(i, k + 1));
    assert.equal(p.terms, n);
    const seen = new Int32Array(n).fill(-1);
    for (let i = 0; i < n; i++) {
      const t = p.find(`t${i}`);
      assert.ok(t >= 0 && t < n, `t${i} not found`);
      assert.equal(seen[t], -1, `t${i} and t${seen[t]} share number ${t}`);
      seen[t] = i;
      assert.equal(p.df(t), (i % 3) + 1);
      assert.equal(p.length(t), (i % 3) + 1);
      assert.equal(entrySlot(p.entries[p.start(t)] as number), i);
    }
    for (let i = n; i < n + 1_000; i++) assert.equal(p.find(`t${i}`), -1);
    assert.equal(p.find('t'), -1);
  });
});
