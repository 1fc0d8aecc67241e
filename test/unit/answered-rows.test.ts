/** The shared table of answered rows: keys, replacement of colliding entries. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MemoryRow } from '../../src/memory/memory-types.ts';
import { AnsweredRows } from '../../src/search/answered-rows.ts';
import { memoryRow } from '../helpers/rows.ts';

const rowOf = (id: string): MemoryRow => memoryRow({ id, content: `content of ${id}` });

describe('AnsweredRows', () => {
  it('finds what was put under the same arena and slot, and nothing under another', () => {
    const table = new AnsweredRows();
    const a = table.arena();
    const b = table.arena();
    assert.notEqual(a, b);
    const row = rowOf('id-1');
    table.put(a, 12, row);
    assert.equal(table.find(a, 12), row);
    assert.equal(table.find(b, 12), null);
    assert.equal(table.find(a, 13), null);
  });

  it('holds at most one row per position: a later slot takes the place of an earlier one', () => {
    const table = new AnsweredRows();
    const arena = table.arena();
    // 10,000 slots into 4,096 entries: some were replaced; every found one is right.
    for (let slot = 0; slot < 10_000; slot++) table.put(arena, slot, rowOf(`id-${slot}`));
    let found = 0;
    for (let slot = 0; slot < 10_000; slot++) {
      const row = table.find(arena, slot);
      if (row === null) continue;
      found++;
      assert.equal(row.id, `id-${slot}`);
    }
    assert.ok(found > 1_000 && found <= 4_096, `${found} found`);
    // The newest are mostly there.
    let recent = 0;
    for (let slot = 9_900; slot < 10_000; slot++) if (table.find(arena, slot) !== null) recent++;
    assert.ok(recent >= 90, `${recent} of the last 100`);
  });
});
