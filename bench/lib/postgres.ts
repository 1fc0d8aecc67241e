import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The PostgreSQL server benchmarks use: TEST_DATABASE_URL or the local test database. */
export const BENCH_PG_URL =
  process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

/** Null when PostgreSQL answers at {@link BENCH_PG_URL}, else why not. */
export async function probePostgres(): Promise<string | null> {
  const client = new pg.Client({ connectionString: BENCH_PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return (err as Error).message || String(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A fresh, empty schema of the benchmark server. */
export interface BenchSchema {
  /** Connection string whose search_path is the schema. */
  url: string;
  name: string;
  /** Drops the schema and everything in it. */
  drop: () => Promise<void>;
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: BENCH_PG_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Creates a new schema (`engram_bench_<hex>`) and returns a URL that uses it. */
export async function createBenchSchema(): Promise<BenchSchema> {
  const name = `engram_bench_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE SCHEMA ${name}`);
  const url = new URL(BENCH_PG_URL);
  url.searchParams.set('options', `-c search_path=${name}`);
  return {
    url: url.toString(),
    name,
    drop: () => adminQuery(`DROP SCHEMA IF EXISTS ${name} CASCADE`),
  };
}

/**
 * VACUUM (ANALYZE) of every table of the bench's schema after seeding: the planner has the
 * seeded data's statistics, and no autovacuum of the fresh rows runs during the measurements.
 */
export async function vacuumAnalyze(url: string, schemaName: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const { rows } = await client.query<{ tablename: string }>(
      'SELECT tablename FROM pg_tables WHERE schemaname = $1',
      [schemaName],
    );
    for (const { tablename } of rows) {
      await client.query(`VACUUM (ANALYZE) "${schemaName}"."${tablename}"`);
    }
  } finally {
    await client.end();
  }
}
