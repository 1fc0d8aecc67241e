/**
 * Redis command deadlines against real servers. An event-loop stall longer than the deadline
 * (answer already in the socket when the loop resumes) must not fail a command: ioredis's
 * `commandTimeout` failed it, the timers phase running before the poll phase that reads the
 * answer. A Redis that really does not answer (SIGSTOP of a throwaway redis-server) must still
 * fail every command within the deadline plus a margin.
 */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { encodeEntry, etagOf } from '../../src/cache/cache-entry.ts';
import { newCounters } from '../../src/cache/cache-stats.ts';
import { InvalidationBus } from '../../src/cache/invalidation-bus.ts';
import { createRedis, whenReady } from '../../src/cache/redis-client.ts';
import { RedisL2 } from '../../src/cache/redis-l2.ts';
import { SessionHotState } from '../../src/sessions/session-hot-state.ts';
import type { SessionRow } from '../../src/sessions/session-types.ts';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.ts';
import { needs, REDIS_URL } from '../helpers/services.ts';

const logger = pino({ level: 'silent' });
/** Slack for a loaded 2-core machine on top of the deadline. */
const MARGIN_MS = 400;

/** Holds the event loop synchronously, like CPU work or a GC pause. */
function block(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy
  }
}

function session(tenant: string, now: number): SessionRow {
  return {
    tenant,
    id: randomUUID(),
    userId: 'u',
    agentId: null,
    state: 'active',
    createdAt: now,
    lastActivityAt: now,
    expiresAt: now + 60_000,
    endedAt: null,
    timeoutMs: 60_000,
    timeoutBasis: {
      source: 'default',
      withinGaps: 0,
      betweenGaps: 0,
      quantile: 0.9,
      quantileMs: null,
      margin: 1,
      clamped: null,
      betweenMedianMs: null,
    },
    messageCount: 1,
    summaryId: null,
  };
}

const redisSkip = (await needs('redis')).skip;

describe('Redis answers read after an event-loop stall longer than the deadline', {
  skip: redisSkip,
}, () => {
  const DEADLINE_MS = 50;
  // Keys under the prefixes RedisL2 and SessionHotState use, made unique to this run.
  const tag = `deadline-test-${randomUUID()}`;
  const keys: string[] = [];
  let client: Redis;

  before(async () => {
    client = createRedis(
      { url: REDIS_URL, commandTimeoutMs: DEADLINE_MS, name: 'engram-test-deadline' },
      logger,
    );
    assert.ok(await whenReady(client, 5_000), 'Redis ready');
  });
  after(async () => {
    try {
      if (keys.length > 0) await client.del(...keys);
    } finally {
      client?.disconnect();
    }
  });

  it('RedisL2: a version read and an entry read sent right before a 200 ms stall succeed', async () => {
    const counters = newCounters();
    const l2 = new RedisL2(client, counters, DEADLINE_MS);
    const scope = `${tag}/user`;
    keys.push(`engram:v:${scope}`);
    const reading = l2.version(scope, 7);
    block(200);
    assert.equal(await reading, 7, 'the version Redis answered, not a failure');

    const key = `${tag}/entry`;
    keys.push(`engram:${key}`);
    const now = Date.now();
    const body = Buffer.from('{"items":[]}');
    const entry = {
      body,
      etag: etagOf(body),
      version: 7,
      storedAt: now,
      freshUntil: now + 60_000,
      validUntil: now + 60_000,
    };
    await client.set(`engram:${key}`, encodeEntry(entry), 'PX', 60_000);
    const getting = l2.get(key);
    block(200);
    const got = await getting;
    assert.ok(got, 'the entry Redis answered, not a miss');
    assert.equal(Buffer.from(got.body).toString(), '{"items":[]}');
    assert.equal(counters.l2Errors, 0);
  });

  it('SessionHotState: a write and a read sent right before a 200 ms stall succeed', async () => {
    const hot = new SessionHotState(client, 10, DEADLINE_MS);
    const s = session(tag, Date.now());
    keys.push(`engram:session:${tag}/${s.id}`, `engram:session:${tag}/${s.id}:w`);
    const putting = hot.put(s, Date.now());
    block(200);
    await putting;
    const getting = hot.get(tag, s.id);
    block(200);
    const got = await getting;
    assert.equal(got?.session.id, s.id);
    assert.equal(hot.failures, 0);
  });
});

const binarySkip = (await needs('redis-server')).skip;

describe('Redis hung (SIGSTOP): commands still fail by the deadline', { skip: binarySkip }, () => {
  const DEADLINE_MS = 100;
  let redis: RedisServer;
  let client: Redis;
  let subscriber: Redis;
  let bus: InvalidationBus | undefined;

  before(async () => {
    redis = await startRedisServer();
    const options = { url: redis.url, commandTimeoutMs: DEADLINE_MS };
    client = createRedis({ ...options, name: 'engram-test-hung' }, logger);
    subscriber = createRedis(
      { ...options, name: 'engram-test-hung-bus', subscriber: true },
      logger,
    );
    assert.ok(await whenReady(client, 5_000));
    assert.ok(await whenReady(subscriber, 5_000));
  });
  after(async () => {
    bus?.stop();
    client?.disconnect();
    subscriber?.disconnect();
    await redis?.stop();
  });

  /** Runs `op` and returns its outcome with how long it took. */
  const timed = async <T>(op: () => Promise<T>): Promise<{ value: T; ms: number }> => {
    const started = performance.now();
    const value = await op();
    return { value, ms: performance.now() - started };
  };

  it('L2 reads, bus publishes and session reads fail within the deadline plus a margin', async () => {
    const counters = newCounters();
    const l2 = new RedisL2(client, counters, DEADLINE_MS);
    bus = new InvalidationBus(
      client,
      subscriber,
      { onMessage: () => undefined, onReconnect: () => undefined },
      logger,
      1_000,
      DEADLINE_MS,
    );
    const hot = new SessionHotState(client, 10, DEADLINE_MS);
    assert.equal(await l2.version('hung/user', 3), 3, 'answers before the stall');

    redis.pause();
    try {
      const version = await timed(() => l2.version('hung/user', 3));
      assert.equal(version.value, null);
      const published = await timed(() => bus?.publish('hung/user', 4) ?? Promise.resolve(true));
      assert.equal(published.value, false);
      const read = await timed(() => hot.get('hung', 'nope'));
      assert.equal(read.value, null);
      assert.equal(hot.failures, 1);
      assert.equal(counters.l2Errors, 1);
      for (const { ms } of [version, published, read]) {
        assert.ok(ms >= DEADLINE_MS - 5, `failed only at the deadline (${ms.toFixed(0)} ms)`);
        assert.ok(ms < DEADLINE_MS + MARGIN_MS, `failed by the deadline (${ms.toFixed(0)} ms)`);
      }
    } finally {
      redis.resume();
    }
    // Back: the connection was never lost, the answers queued behind the stall are read.
    assert.equal(await l2.version('hung/user', 3), 3);
  });
});
