/**
 * Versions against a real (throwaway) Redis, with a slow link: a version announced on the bus
 * while this instance is waiting for Redis to confirm an older one must not be lost. (Redis
 * answers the version read and delivers the newer version's message on two connections, so
 * the message can arrive first.)
 */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { newCounters } from '../../src/cache/cache-stats.ts';
import { createRedis, whenReady } from '../../src/cache/redis-client.ts';
import { RedisL2 } from '../../src/cache/redis-l2.ts';
import { Versions } from '../../src/cache/versions.ts';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.ts';
import { needs } from '../helpers/services.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

const { skip } = await needs('redis-server');
const logger = pino({ level: 'silent' });
const clock = { now: () => Date.now() };

describe('versions over a slow link to Redis', { skip }, () => {
  let redis: RedisServer;
  let proxy: TcpProxy;
  let slowClient: Redis;
  let fastClient: Redis;

  before(async () => {
    redis = await startRedisServer();
    proxy = await startTcpProxy({ port: redis.port });
    slowClient = createRedis(
      { url: `redis://127.0.0.1:${proxy.port}`, commandTimeoutMs: 5_000, name: 'slow' },
      logger,
    );
    fastClient = createRedis({ url: redis.url, commandTimeoutMs: 5_000, name: 'fast' }, logger);
    assert.ok(await whenReady(slowClient, 5_000));
    assert.ok(await whenReady(fastClient, 5_000));
  });
  after(async () => {
    slowClient?.disconnect();
    fastClient?.disconnect();
    await proxy?.close();
    await redis?.stop();
  });

  it('keeps a newer version announced while Redis confirms an older one', async () => {
    const scope = `acme/${randomUUID()}`;
    const here = new Versions(new RedisL2(slowClient, newCounters(), 5_000), clock, 10_000);
    const elsewhere = new Versions(new RedisL2(fastClient, newCounters(), 5_000), clock, 10_000);
    const v1 = await elsewhere.current(scope);
    assert.ok(v1 !== null);

    // Each way through the proxy takes 300 ms: the read runs in Redis at ~300 ms, its answer
    // arrives at ~600 ms. Meanwhile (at ~400 ms) another instance writes and its new version
    // is announced here, as the bus would.
    proxy.delay(300);
    const confirming = here.current(scope);
    await sleep(400);
    const v2 = await elsewhere.bump(scope);
    assert.equal(v2, v1 + 1);
    here.apply(scope, v2);
    // Redis answered v1 (the read ran before the write); v2 was announced meanwhile.
    assert.equal(await confirming, v2);
    proxy.delay(0);

    // Within the trust window: the version must be the announced one, not the older answer.
    assert.equal(await here.current(scope), v2);
  });

  it('numbers concurrent writes of one scope in turn, each seen as contiguous', async () => {
    // The busiest users write concurrently: overlapping bumps each read the version before
    // the first one's and looked non-contiguous, which dropped the user's search index.
    const scope = `acme/${randomUUID()}`;
    const here = new Versions(new RedisL2(slowClient, newCounters(), 5_000), clock, 10_000);
    const v1 = await here.current(scope);
    assert.ok(v1 !== null);
    proxy.delay(50);
    const bumps = await Promise.all([
      here.bumpFrom(scope),
      here.bumpFrom(scope),
      here.bumpFrom(scope),
    ]);
    proxy.delay(0);
    assert.deepEqual(
      bumps.map((b) => [b.previous, b.version, b.contiguous]),
      [
        [v1, v1 + 1, true],
        [v1 + 1, v1 + 2, true],
        [v1 + 2, v1 + 3, true],
      ],
    );
  });

  it('keeps a newer version announced while its own bump is on the way', async () => {
    const scope = `acme/${randomUUID()}`;
    const here = new Versions(new RedisL2(slowClient, newCounters(), 5_000), clock, 10_000);
    const elsewhere = new Versions(new RedisL2(fastClient, newCounters(), 5_000), clock, 10_000);
    const v1 = await here.current(scope);
    assert.ok(v1 !== null);

    proxy.delay(300);
    const bumping = here.bump(scope); // INCR runs in Redis at ~300 ms
    await sleep(400);
    const v3 = await elsewhere.bump(scope); // after it
    here.apply(scope, v3);
    const mine = await bumping;
    proxy.delay(0);
    assert.equal(v3, v1 + 2);
    assert.ok(mine <= v3);
    assert.equal(await here.current(scope), v3);
  });
});
