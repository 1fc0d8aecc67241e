/**
 * An Engram server on a seeded data set: a first server seeds it, is stopped, and a fresh one
 * starts on the same data, so no cache or index is warm from the seeding.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deferCleanup } from './cleanup.ts';
import { type Dataset, seedDataset, type TextSource } from './dataset.ts';
import { createBenchSchema, vacuumAnalyze } from './postgres.ts';
import { type EngramServer, type StoreKind, startEngram } from './server-process.ts';

/** Seeded data that servers can be started on, any number of times. */
export interface SeededData {
  store: StoreKind;
  seeding: { memories: number; seconds: number };
  /** Starts a fresh server on the seeded data (`env` added to the seeding's). */
  start: (env?: Record<string, string>) => Promise<EngramServer>;
}

/**
 * Seeds `dataset` into a new SQLite directory or PostgreSQL schema (removed when the bench
 * ends) through a server run with `env`; servers started later copy the SQLite directory (so a
 * run's writes do not reach the next one's data) or share the schema.
 */
export async function seedData(
  store: StoreKind,
  env: Record<string, string>,
  dataset: Dataset,
  text: TextSource,
  label: string,
): Promise<SeededData> {
  let seedEnv = env;
  let data: { dataDir?: string } = {};
  if (store === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), `engram-bench-${label}-`));
    deferCleanup(() => rmSync(dir, { recursive: true, force: true }));
    data = { dataDir: dir };
  } else {
    // Our own schema, named in DATABASE_URL: stopping a server drops its throwaway schema,
    // not this one.
    const schema = await createBenchSchema();
    deferCleanup(schema.drop);
    seedEnv = { ...env, DATABASE_URL: schema.url };
  }
  const seeder = await startEngram(store, seedEnv, data);
  let seeding: { memories: number; seconds: number };
  try {
    seeding = await seedDataset(seeder, dataset, text, label);
  } finally {
    await seeder.stop();
  }
  if (store === 'postgres') {
    const url = new URL(seedEnv.DATABASE_URL as string);
    const name = /search_path=(\S+)/.exec(url.searchParams.get('options') ?? '')?.[1] ?? '';
    await vacuumAnalyze(url.toString(), name);
  }
  process.stderr.write(
    `${label}: seeded ${seeding.memories.toLocaleString('en-US')} memories of ${dataset.spec.users.toLocaleString('en-US')} users in ${seeding.seconds.toFixed(1)} s\n`,
  );
  return {
    store,
    seeding,
    start: (more = {}) =>
      startEngram(
        store,
        { ...seedEnv, ...more },
        data.dataDir === undefined ? {} : { copyFrom: data.dataDir },
      ),
  };
}
