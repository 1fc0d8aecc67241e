/**
 * The off-heap ids of an index (IdTable): checked against a plain Map model through random
 * pushes, removals and trims (table growth, removed positions, non-ASCII ids), and its size
 * per ULID against the heap strings it replaced.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { newMemoryId } from '../../src/memory/ids.ts';
import { IdTable } from '../../src/search/id-table.ts';

const SMALL = ['a', 'b', 'é', 'café', '東京', '🙂', 'x'.repeat(300), '', 'A', 'ab', 'ba'];

const idArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...SMALL) },
  { weight: 4, arbitrary: fc.nat(500).map((n) => `m${n}`) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 30 }) },
);

type Op = { kind: 'push'; id: string } | { kind: 'remove'; pick: number } | { kind: 'trim' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: idArb.map((id) => ({ kind: 'push' as const, id })) },
  { weight: 3, arbitrary: fc.nat().map((pick) => ({ kind: 'remove' as const, pick })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'trim' as const }) },
);

describe('IdTable', () => {
  it('finds every held id at its slot and no removed one, as a Map would', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 400 }), idArb, (ops, probe) => {
        const table = new IdTable();
        const model = new Map<string, number>();
        const ids: string[] = [];
        for (const op of ops) {
          if (op.kind === 'push') {
            // The index pushes an id only when it does not hold it.
            if (model.has(op.id)) continue;
            const slot = table.push(op.id);
            assert.equal(slot, ids.length);
            ids.push(op.id);
            model.set(op.id, slot);
          } else if (op.kind === 'remove') {
            const held = [...model.values()];
            if (held.length === 0) continue;
            const slot = held[op.pick % held.length] as number;
            table.remove(slot);
            model.delete(ids[slot] as string);
          } else {
            table.trim();
          }
        }
        assert.equal(table.size, ids.length);
        for (const [slot, id] of ids.entries()) assert.equal(table.id(slot), id);
        for (const [id, slot] of model) assert.equal(table.find(id), slot);
        assert.equal(table.find(probe), model.get(probe) ?? -1);
      }),
      { numRuns: 300 },
    );
  });

  it('holds a removed id again at a new slot when it comes back', () => {
    const table = new IdTable();
    const first = table.push('memory');
    table.remove(first);
    assert.equal(table.find('memory'), -1);
    const again = table.push('memory');
    assert.equal(again, 1);
    assert.equal(table.find('memory'), 1);
  });

  it('takes under 50 B per ULID, trimmed (its strings on the heap took ≈ 110 B)', () => {
    const table = new IdTable();
    const now = Date.now();
    const ids = Array.from({ length: 20_000 }, (_, i) => newMemoryId(now - i, now));
    for (const id of ids) table.push(id);
    table.trim();
    assert.ok(table.bytes / ids.length < 50, `${table.bytes / ids.length} B per id`);
    for (const [slot, id] of ids.entries()) assert.equal(table.find(id), slot);
  });
});
