/** The in-process read path: `L1Cache.get` hit and miss, `CacheStack.peek` of a warm key. */
import { pino } from 'pino';
import { etagOf } from '../../src/cache/cache-entry.ts';
import { newCounters } from '../../src/cache/cache-stats.ts';
import { createCache } from '../../src/cache/create-cache.ts';
import { L1Cache } from '../../src/cache/l1-cache.ts';
import { systemClock } from '../../src/util/clock.ts';
import { type MicroResult, measure } from './micro-result.ts';

const KEYS = 1000;

export async function run(): Promise<MicroResult[]> {
  const body = Buffer.from(JSON.stringify({ memories: [], note: 'x'.repeat(2000) }));
  const now = Date.now();
  const l1 = new L1Cache(64 * 2 ** 20, 3_600_000, newCounters());
  const keys = Array.from({ length: KEYS }, (_, i) => `list/acme/user-${i}/{"limit":20}`);
  const missing = keys.map((k) => `${k}-missing`);
  for (const key of keys) {
    l1.set(key, {
      body,
      etag: etagOf(body),
      version: 1,
      storedAt: now,
      freshUntil: now + 3_600_000,
      validUntil: 0,
    });
  }

  const cache = createCache(
    {
      redisUrl: '',
      redisTimeoutMs: 100,
      l1MaxBytes: 64 * 2 ** 20,
      l1TrustMs: 3_600_000,
      // config.ts's default. Not 3_600_000: createCache gives lru-cache ttlMs * 1.1 + graceMs,
      // which must be an integer, and 3_600_000 * 1.1 is not in floating point.
      ttlMs: 300_000,
      graceMs: 60_000,
    },
    systemClock,
    pino({ level: 'silent' }),
  );
  const warm = { scope: 'acme/user-1', key: 'list/acme/user-1/{"limit":20}' };
  await cache.stack.get(warm, async () => ({ body }));
  if (!cache.stack.peek(warm)) throw new Error('cache-get: the warm key is not served by peek');

  let i = 0;
  let j = 0;
  try {
    return await measure('cache-get', [
      ['L1Cache.get, hit', () => void l1.get(keys[i++ % KEYS] as string)],
      ['L1Cache.get, miss', () => void l1.get(missing[j++ % KEYS] as string)],
      ['CacheStack.peek, warm key', () => void cache.stack.peek(warm)],
    ]);
  } finally {
    await cache.close();
  }
}
