/** Response bodies: `toPublicMemory` + `JSON.stringify` of 1 and 10 memories; `etagOf` of 2 KB. */
import { etagOf } from '../../src/cache/cache-entry.ts';
import { toPublicMemory } from '../../src/memory/memory-view.ts';
import { Corpus } from '../lib/text-corpus.ts';
import { type MicroResult, measure } from './micro-result.ts';

export async function run(): Promise<MicroResult[]> {
  const rows = new Corpus(1).rows('bench', 'user-1', 10);
  const one = rows[0] as (typeof rows)[number];
  const body = Buffer.alloc(2048, 'a');
  return measure('serialization', [
    ['toPublicMemory + stringify, 1 memory', () => void JSON.stringify(toPublicMemory(one))],
    [
      'toPublicMemory + stringify, 10 memories',
      () => void JSON.stringify({ memories: rows.map(toPublicMemory) }),
    ],
    ['etagOf, 2 KB body', () => void etagOf(body)],
  ]);
}
