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

  it('drops the row of one slot, and leaves the others', () => {
    const table = new AnsweredRows();
    const arena = table.arena();
    table.put(arena, 3, rowOf('three'));
    table.put(arena, 4, rowOf('four'));
    table.drop(arena, 3);
    table.drop(table.arena(), 4);
    assert.equal(table.find(arena, 3), null);
    assert.equal(table.find(arena, 4)?.id, 'four');
  });

  it('forgets every row of one user (their erasure), and only theirs', () => {
    const table = new AnsweredRows();
    const a = table.arena();
    const b = table.arena();
    const of = (tenant: string, userId: string, id: string): MemoryRow =>
      memoryRow({ tenant, userId, id, content: id });
    for (let slot = 0; slot < 50; slot++) {
      table.put(a, slot, of('acme', 'ann', `ann-${slot}`));
      table.put(b, slot, of('acme', 'bob', `bob-${slot}`));
    }
    // The same user name in another tenant is another user.
    const c = table.arena();
    table.put(c, 0, of('other', 'ann', 'other-ann'));
    const annHeld = table.heldOf('acme', 'ann');
    const bobHeld = table.heldOf('acme', 'bob');
    assert.ok(annHeld > 40 && bobHeld > 40, `${annHeld}, ${bobHeld}`);
    table.forget('acme', 'ann');
    assert.equal(table.heldOf('acme', 'ann'), 0);
    for (let slot = 0; slot < 50; slot++) assert.equal(table.find(a, slot), null);
    assert.equal(table.heldOf('acme', 'bob'), bobHeld);
    assert.equal(table.find(c, 0)?.id, 'other-ann');
  });

  it('admits a key on its second answer, and a key answered in between makes it start over', () => {
    const table = new AnsweredRows();
    const arena = table.arena();
    assert.equal(table.admit(arena, 7), false, 'first answer');
    assert.equal(table.admit(arena, 7), true, 'second answer');
    assert.equal(table.admit(table.arena(), 7), false, 'same slot, another arena');
    // Other slots answered once each: the one sharing slot 7's position takes its note, and
    // slot 7's next answer counts as a first again (noting it once more).
    let rival = 8;
    for (; rival < 100_000; rival++) {
      table.admit(arena, rival);
      if (!table.admit(arena, 7)) break;
    }
    assert.ok(rival < 100_000, 'a colliding slot was found');
    assert.equal(table.admit(arena, 7), true, 'noted again: the next answer is a second');
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
