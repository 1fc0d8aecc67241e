import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import pg from 'pg';

/** The PostgreSQL server tests use: TEST_DATABASE_URL, DATABASE_URL, or the local one. */
export const PG_URL =
  process.env.TEST_DATABASE_URL ||
  process.env.DATABASE_URL ||
  'postgres://postgres@127.0.0.1:5432/test';

/** With CI=true a missing service fails the run instead of skipping. */
export const IN_CI = process.env.CI === 'true';

let pgProbe: Promise<string | null> | undefined;

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

/**
 * Options for a suite that needs a service: skipped with a loud line when the service is
 * missing, or failing when CI=true.
 */
export async function needs(service: 'postgres'): Promise<{ skip: string | false }> {
  const problem = await probePostgres();
  if (problem === null) return { skip: false };
  const line = `${service.toUpperCase()} NOT REACHABLE at ${PG_URL} (${problem})`;
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

/** Registers `fn` to run after the test. */
export function cleanup(t: TestContext, fn: () => Promise<unknown> | unknown): void {
  t.after(async () => {
    await fn();
  });
}
