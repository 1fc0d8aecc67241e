/**
 * The end-to-end scenarios' data set (bench/lib/dataset.ts): the planned users' sizes (Zipf,
 * capped, adding up to the memories asked for), the draw of users by activity, and the texts of
 * seeded memories (LoCoMo when on hand, synthetic otherwise; deterministic in the seed).
 */

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { activity, type DatasetSpec, planDataset, TextSource } from '../../bench/lib/dataset.ts';
import { prng } from '../../bench/lib/zipf.ts';

const LOCOMO_DIR = fileURLToPath(new URL('../../../shared/datasets/locomo10-dev', import.meta.url));

function spec(overrides: Partial<DatasetSpec>): DatasetSpec {
  return { users: 100, memories: 10_000, zipf: 1, maxPerUser: 20_000, seed: 1, ...overrides };
}

/** Harmonic number of order `s`: the sum of 1/k^s for k = 1…n. */
function harmonic(n: number, s: number): number {
  let sum = 0;
  for (let k = 1; k <= n; k++) sum += 1 / k ** s;
  return sum;
}

/** Checks every invariant of a plan and returns it. */
function checkPlan(s: DatasetSpec): ReturnType<typeof planDataset> {
  const d = planDataset(s);
  const label = JSON.stringify(s);
  assert.equal(d.sizes.length, s.users, label);
  let sum = 0;
  for (let u = 0; u < s.users; u++) {
    const size = d.sizes[u] as number;
    sum += size;
    assert.ok(size >= 1, `${label}: size[${u}] = ${size} < 1`);
    assert.ok(size <= s.maxPerUser, `${label}: size[${u}] = ${size} > ${s.maxPerUser}`);
    if (u > 0) {
      const prev = d.sizes[u - 1] as number;
      assert.ok(size <= prev, `${label}: size[${u}] = ${size} > size[${u - 1}] = ${prev}`);
    }
  }
  assert.equal(d.total, sum, `${label}: total is not the sum of the sizes`);
  assert.ok(
    Math.abs(d.total - s.memories) <= s.users,
    `${label}: total ${d.total} too far from ${s.memories}`,
  );
  return d;
}

describe('planDataset', () => {
  it('follows Zipf at the head when no user is capped (s = 1: size[0]/size[9] ≈ 10)', () => {
    const d = checkPlan(spec({ users: 100, memories: 10_000 }));
    assert.equal(d.total, 10_000);
    // 10,000 / H(100) ≈ 1,928 for user 0, a tenth of it for user 9.
    const head = 10_000 / harmonic(100, 1);
    assert.ok(Math.abs((d.sizes[0] as number) - head) <= 1, `size[0] = ${d.sizes[0]}`);
    const ratio = (d.sizes[0] as number) / (d.sizes[9] as number);
    assert.ok(Math.abs(ratio - 10) < 0.1, `size[0]/size[9] = ${ratio}`);
    assert.ok(Math.abs((d.sizes[0] as number) / (d.sizes[1] as number) - 2) < 0.01);
    // The tail ends at 1 × f/100 ≈ 19.
    assert.ok(Math.abs((d.sizes[99] as number) - head / 100) <= 1, `size[99] = ${d.sizes[99]}`);
  });

  it('follows the exponent: s = 2 gives size[0]/size[1] ≈ 4', () => {
    const d = checkPlan(spec({ users: 50, memories: 5_000, zipf: 2 }));
    const ratio = (d.sizes[0] as number) / (d.sizes[1] as number);
    assert.ok(Math.abs(ratio - 4) < 0.01, `size[0]/size[1] = ${ratio}`);
  });

  it('caps user 0 when its Zipf share would exceed maxPerUser, and the others take the rest', () => {
    // Uncapped, user 0 would hold 1,000 / H(10) ≈ 341 memories.
    const d = checkPlan(spec({ users: 10, memories: 1_000, maxPerUser: 200 }));
    assert.ok(1_000 / harmonic(10, 1) > 200);
    assert.equal(d.sizes[0], 200);
    assert.equal(d.total, 1_000);
    // Below the cap the sizes still follow 1/(u+1): size[2]/size[5] = 6/3.
    assert.ok(Math.abs((d.sizes[2] as number) / (d.sizes[5] as number) - 2) < 0.05);
  });

  it('holds its invariants over many shapes', () => {
    const random = prng(42);
    for (let i = 0; i < 60; i++) {
      const users = 1 + Math.floor(random() * 2_000);
      const maxPerUser = 1 + Math.floor(random() * 3_000);
      const memories = users + Math.floor(random() * (users * maxPerUser - users + 1));
      const zipf = 0.5 + random();
      checkPlan({ users, memories, zipf, maxPerUser, seed: i });
    }
  });

  it('handles the extremes: one memory each, and every user full', () => {
    const ones = checkPlan(spec({ users: 7, memories: 7, maxPerUser: 3 }));
    assert.deepEqual([...ones.sizes], [1, 1, 1, 1, 1, 1, 1]);
    const full = checkPlan(spec({ users: 7, memories: 21, maxPerUser: 3 }));
    assert.deepEqual([...full.sizes], [3, 3, 3, 3, 3, 3, 3]);
    const single = checkPlan(spec({ users: 1, memories: 500, maxPerUser: 500 }));
    assert.deepEqual([...single.sizes], [500]);
  });

  it('names users by rank', () => {
    const d = planDataset(spec({}));
    assert.equal(d.userId(0), 'user-000000');
    assert.equal(d.userId(42), 'user-000042');
    assert.notEqual(d.userId(1), d.userId(2));
  });

  it('throws RangeError when the memories cannot be spread', () => {
    assert.throws(() => planDataset(spec({ users: 10, memories: 9 })), RangeError);
    assert.throws(() => planDataset(spec({ users: 10, memories: 51, maxPerUser: 5 })), RangeError);
    assert.doesNotThrow(() => planDataset(spec({ users: 10, memories: 50, maxPerUser: 5 })));
    assert.doesNotThrow(() => planDataset(spec({ users: 10, memories: 10, maxPerUser: 5 })));
  });
});

describe('activity', () => {
  it('draws user 0 most, at its Zipf probability', () => {
    const users = 100;
    const d = planDataset(spec({ users, memories: 10_000 }));
    const draw = activity(d, prng(7));
    const draws = 50_000;
    const counts = new Array<number>(users).fill(0);
    for (let i = 0; i < draws; i++) {
      const u = draw();
      assert.ok(Number.isInteger(u) && u >= 0 && u < users, `drew ${u}`);
      counts[u] = (counts[u] as number) + 1;
    }
    const c0 = counts[0] as number;
    assert.equal(Math.max(...counts), c0);
    const p0 = 1 / harmonic(users, 1); // ≈ 0.193
    const share0 = c0 / draws;
    assert.ok(Math.abs(share0 - p0) < 0.05 * p0, `user 0 drawn ${share0}, expected ≈ ${p0}`);
    const share1 = (counts[1] as number) / draws;
    assert.ok(Math.abs(share1 - p0 / 2) < 0.1 * (p0 / 2), `user 1 drawn ${share1}`);
    // Activity follows sizes: the biggest user is also the busiest.
    assert.ok(c0 > (counts[9] as number) * 5);
  });

  it('is deterministic in the random sequence', () => {
    const d = planDataset(spec({ users: 100, memories: 10_000 }));
    const a = activity(d, prng(3));
    const b = activity(d, prng(3));
    const sa = Array.from({ length: 200 }, () => a());
    const sb = Array.from({ length: 200 }, () => b());
    assert.deepEqual(sa, sb);
  });
});

const KINDS = ['message', 'fact', 'preference', 'event'];

interface SeededMemory {
  content: string;
  kind: string;
  sessionId?: string;
  importance: number;
  pinned: boolean;
}

describe('TextSource', () => {
  it('loads LoCoMo when the data set is on hand', {
    skip: !existsSync(LOCOMO_DIR) && `no data set at ${LOCOMO_DIR}`,
  }, async () => {
    const text = await TextSource.load();
    assert.equal(text.origin, 'locomo');
    assert.ok(text.size > 1_000, `${text.size} texts`);
    const explicit = await TextSource.load(LOCOMO_DIR);
    assert.equal(explicit.origin, 'locomo');
    assert.equal(explicit.size, text.size);
  });

  it('falls back to synthetic text when the directory does not exist', async () => {
    const text = await TextSource.load('/nonexistent');
    assert.equal(text.origin, 'synthetic');
    assert.ok(text.size > 1_000, `${text.size} texts`);
    const random = prng(5);
    const message = text.message(random);
    const query = text.query(random);
    assert.equal(typeof message, 'string');
    assert.ok(message.length > 0);
    assert.equal(typeof query, 'string');
    assert.ok(query.length > 0);
  });

  for (const dir of [undefined, '/nonexistent']) {
    it(`makes well-formed memories (${dir ?? 'default directory'})`, async () => {
      const text = await TextSource.load(dir);
      const random = prng(11);
      const n = 5_000;
      const kinds: Record<string, number> = {};
      for (let i = 0; i < n; i++) {
        const m = text.memory(random, i) as SeededMemory;
        assert.ok(KINDS.includes(m.kind), `kind ${m.kind}`);
        kinds[m.kind] = (kinds[m.kind] ?? 0) + 1;
        assert.equal(typeof m.content, 'string');
        assert.ok(m.content.length > 0);
        if (m.kind === 'message') assert.equal(m.sessionId, `seed-${Math.floor(i / 20)}`);
        else assert.equal('sessionId' in m, false, `${m.kind} with a session`);
        assert.ok(m.importance >= 0 && m.importance <= 1, `importance ${m.importance}`);
        assert.equal(typeof m.pinned, 'boolean');
        if (m.kind !== 'preference') assert.equal(m.pinned, false);
      }
      // Shares: facts 15 %, preferences 5 %, events 5 %, messages the rest.
      const share = (k: string) => (kinds[k] ?? 0) / n;
      assert.ok(Math.abs(share('message') - 0.75) < 0.03, `messages ${share('message')}`);
      assert.ok(Math.abs(share('fact') - 0.15) < 0.02, `facts ${share('fact')}`);
      assert.ok(Math.abs(share('preference') - 0.05) < 0.015, `prefs ${share('preference')}`);
      assert.ok(Math.abs(share('event') - 0.05) < 0.015, `events ${share('event')}`);
    });
  }

  it('gives the same memories for the same seed, other ones for another', async () => {
    const text = await TextSource.load();
    const seq = (seed: number) => {
      const random = prng(seed);
      return Array.from({ length: 300 }, (_, i) => text.memory(random, i));
    };
    assert.deepEqual(seq(9), seq(9));
    assert.notDeepEqual(seq(9), seq(10));
    // And across loads (the synthetic corpus is seeded too).
    const a = await TextSource.load('/nonexistent');
    const b = await TextSource.load('/nonexistent');
    const ra = prng(4);
    const rb = prng(4);
    for (let i = 0; i < 100; i++) assert.deepEqual(a.memory(ra, i), b.memory(rb, i));
  });
});
