/** The shared table of decoded ids and contents: keys, replacement, the size bound. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DecodedRecords } from '../../src/search/decoded-records.ts';

describe('DecodedRecords', () => {
  it('finds what was put under the same arena and slot, and nothing under another', () => {
    const table = new DecodedRecords();
    const a = table.arena();
    const b = table.arena();
    assert.notEqual(a, b);
    table.put(a, 12, 'id-1', 'content one');
    const e = table.find(a, 12);
    assert.ok(e >= 0);
    assert.equal(table.id(e), 'id-1');
    assert.equal(table.content(e), 'content one');
    assert.equal(table.find(b, 12), -1);
    assert.equal(table.find(a, 13), -1);
  });

  it('holds at most one entry per position: a later slot takes the place of an earlier one', () => {
    const table = new DecodedRecords();
    const arena = table.arena();
    // 10,000 slots into 4,096 entries: some were replaced; every found one is right.
    for (let slot = 0; slot < 10_000; slot++) table.put(arena, slot, `id-${slot}`, `c${slot}`);
    let found = 0;
    for (let slot = 0; slot < 10_000; slot++) {
      const e = table.find(arena, slot);
      if (e < 0) continue;
      found++;
      assert.equal(table.id(e), `id-${slot}`);
      assert.equal(table.content(e), `c${slot}`);
    }
    assert.ok(found > 1_000 && found <= 4_096, `${found} found`);
    // The newest records are mostly there.
    let recent = 0;
    for (let slot = 9_900; slot < 10_000; slot++) if (table.find(arena, slot) >= 0) recent++;
    assert.ok(recent >= 90, `${recent} of the last 100`);
  });

  it('does not keep a content longer than 1,024 characters', () => {
    const table = new DecodedRecords();
    const arena = table.arena();
    table.put(arena, 0, 'long', 'x'.repeat(1_025));
    table.put(arena, 7, 'short', 'x'.repeat(1_024));
    assert.equal(table.find(arena, 0), -1);
    assert.ok(table.find(arena, 7) >= 0);
  });
});
