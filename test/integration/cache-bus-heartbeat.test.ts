import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { createCache } from '../../src/cache/create-cache.ts';
import { systemClock } from '../../src/util/clock.ts';
import { startRedisServer } from '../helpers/redis-server.ts';
import { needs } from '../helpers/services.ts';

const { skip } = await needs('redis-server');

// While the bus answers its heartbeat, local versions need no confirmation from Redis (the bus
// keeps them current); a hung Redis keeps the connection "up", so only the heartbeat tells.
describe('invalidation bus heartbeat', { skip }, () => {
  it('trusts local versions while the bus answers, and stops within the trust window when it hangs', async () => {
    const redis = await startRedisServer();
    const cache = createCache(
      {
        redisUrl: redis.url,
        redisTimeoutMs: 100,
        l1MaxBytes: 1 << 20,
        l1TrustMs: 600,
        ttlMs: 60_000,
        graceMs: 60_000,
      },
      systemClock,
      pino({ level: 'silent' }),
    );
    try {
      assert.equal(await cache.ready(3_000), true);
      const key = { scope: 'hb/user', key: 'list/hb/user/x' };
      const load = async () => ({ body: Buffer.from('{"items":[]}') });
      await cache.stack.get(key, load);
      await sleep(1_000); // longer than the trust window: only the bus can vouch now
      assert.equal(cache.stack.peek(key)?.source, 'l1', 'a healthy bus keeps versions trusted');
      redis.pause();
      await sleep(1_200);
      assert.equal(cache.stack.peek(key), undefined, 'a hung bus no longer vouches');
      redis.resume();
    } finally {
      await cache.close();
      await redis.stop();
    }
  });
});
