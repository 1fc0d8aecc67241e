/** Cache keys: `userScope`, `memoryKey`, `queryKey` (short verbatim and long hashed), `canonicalJson`. */
import { canonicalJson, memoryKey, queryKey, userScope } from '../../src/cache/cache-keys.ts';
import { type MicroResult, measure } from './micro-result.ts';

/** A list query's parameters: canonical JSON under 96 characters, kept verbatim. */
const SHORT = { limit: 20, order: 'desc', kind: 'message' };
/** A search's parameters: well over 96 characters, hashed (SHA-256). */
const LONG = {
  query: 'where did Caroline say she wanted to go hiking next summer with her sister',
  limit: 10,
  filter: { kind: 'message', tags: ['travel', 'family', 'outdoors'], sessionId: 'session-0042' },
  weights: { text: 0.6, recency: 0.2, importance: 0.1, pinned: 0.05, use: 0.05 },
  explain: false,
};
/** A flat array of scalars: serialized with native JSON, not canonicalJson. */
const FLAT_ARRAY = ['message', 20, 'desc', ['travel', 'family']];

export async function run(): Promise<MicroResult[]> {
  const tenant = 'acme';
  const user = 'user-00012345';
  return measure('key-hashing', [
    ['userScope', () => void userScope(tenant, user)],
    ['memoryKey', () => void memoryKey(tenant, '01J9ZK7Q4M3X8V2B6N1C5D0F7G')],
    ['queryKey, short object (verbatim)', () => void queryKey('list', tenant, user, SHORT)],
    ['queryKey, flat array (verbatim)', () => void queryKey('list', tenant, user, FLAT_ARRAY)],
    ['queryKey, long object (hashed)', () => void queryKey('search', tenant, user, LONG)],
    ['canonicalJson, short object', () => void canonicalJson(SHORT)],
    ['canonicalJson, long object', () => void canonicalJson(LONG)],
  ]);
}
