import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';

/** The PostgreSQL server tests use: TEST_DATABASE_URL, DATABASE_URL, or the local one. */
export const PG_URL =
  process.env.TEST_DATABASE_URL ||
  process.env.DATABASE_URL ||
  'postgres://postgres@127.0.0.1:5432/test';

/** With CI=true a missing service fails the run instead of skipping. */
export const IN_CI = process.env.CI === 'true';

/** The Redis server tests use as a normal client: TEST_REDIS_URL, REDIS_URL, or the local one. */
export const REDIS_URL =
  process.env.TEST_REDIS_URL || process.env.REDIS_URL || 'redis://127.0.0.1:6379';

let pgProbe: Promise<string | null> | undefined;
let redisProbe: Promise<string | null> | undefined;

/** Null when PostgreSQL answers, else why not. */
export function probePostgres(): Promise<string | null> {
  pgProbe ??= (async () => {
    const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return null;
    } catch (err) {
      return (err as Error).message || String(err);
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return pgProbe;
}

/** Null when Redis answers PING within a second, else why not. */
export function probeRedis(): Promise<string | null> {
  redisProbe ??= (async () => {
    const client = new Redis(REDIS_URL, {
      lazyConnect: true,
      connectTimeout: 1000,
      commandTimeout: 1000,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const answer = await client.ping();
      return answer === 'PONG' ? null : `PING answered ${answer}`;
    } catch (err) {
      return (err as Error).message || String(err);
    } finally {
      client.disconnect();
    }
  })();
  return redisProbe;
}

/** Null when a `redis-server` binary can be run (for throwaway servers), else why not. */
export function probeRedisBinary(): string | null {
  const result = spawnSync('redis-server', ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (result.error) return result.error.message;
  return result.status === 0 ? null : `redis-server --version exited ${result.status}`;
}

/** A service a suite can need: a server, or the binary to start throwaway Redis servers. */
export type Service = 'postgres' | 'redis' | 'redis-server';

/**
 * Options for a suite that needs a service: skipped with a loud line when the service is
 * missing, or failing when CI=true.
 */
export async function needs(service: Service): Promise<{ skip: string | false }> {
  const problem =
    service === 'postgres'
      ? await probePostgres()
      : service === 'redis'
        ? await probeRedis()
        : probeRedisBinary();
  if (problem === null) return { skip: false };
  const where =
    service === 'postgres' ? PG_URL : service === 'redis' ? REDIS_URL : 'the PATH (binary)';
  const line = `${service.toUpperCase()} NOT REACHABLE at ${where} (${problem})`;
  if (IN_CI) throw new Error(`${line}: CI=true requires it`);
  process.stderr.write(`\n!!!!! SKIPPING ${service} suite: ${line} !!!!!\n\n`);
  return { skip: line };
}

/** A PostgreSQL URL whose search_path is a new, empty schema; `drop()` removes it. */
export async function pgSchema(): Promise<{ url: string; drop: () => Promise<void> }> {
  const schema = `engram_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const url = new URL(PG_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    },
  };
}
