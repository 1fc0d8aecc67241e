import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { createCache } from '../../src/cache/create-cache.ts';
import { ConfigError, EnvSchema, loadConfig } from '../../src/config.ts';
import { ErrorCatalog } from '../../src/errors.ts';
import { systemClock } from '../../src/util/clock.ts';

describe('error catalog documentation', () => {
  const doc = readFileSync('docs/errors.md', 'utf8');
  it('documents every code with its status', () => {
    for (const [code, { status }] of Object.entries(ErrorCatalog)) {
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
      assert.ok(row, `${code} is missing from docs/errors.md`);
      assert.ok(row.includes(`| ${status} |`), `${code} is documented with another status`);
    }
  });
  it('documents no code that does not exist', () => {
    const documented = [...doc.matchAll(/^\| `(ENGRAM_[A-Z_]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual(documented.sort(), Object.keys(ErrorCatalog).sort());
  });
});

describe('configuration', () => {
  it('lists every environment key in .env.example', () => {
    const example = readFileSync('.env.example', 'utf8');
    for (const key of Object.keys(EnvSchema.properties)) {
      assert.match(example, new RegExp(`^#? ?${key}=`, 'm'), `${key} missing from .env.example`);
    }
  });
  it('defaults to the embedded SQLite store on 127.0.0.1:8080', () => {
    const config = loadConfig({});
    assert.equal(config.store.kind, 'sqlite');
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 8080);
  });
  it('selects PostgreSQL when DATABASE_URL is set', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://x@h/db', ENGRAM_PG_POOL_MAX: '4' });
    assert.deepEqual(config.store, {
      kind: 'postgres',
      url: 'postgres://x@h/db',
      poolMax: 4,
      connectTimeoutMs: 2000,
      statementTimeoutMs: 5000,
    });
  });
  it('starts the cache with any valid TTL (3,600,000 × 1.1 is not a whole number)', async () => {
    for (const ttl of ['1000', '3600000', '86400000']) {
      const config = loadConfig({ ENGRAM_CACHE_TTL_MS: ttl });
      const cache = createCache(config.cache, systemClock, pino({ level: 'silent' }));
      await cache.close();
    }
  });

  it('refuses invalid values once, naming each key', () => {
    assert.throws(
      () => loadConfig({ ENGRAM_PORT: '99999', ENGRAM_LOG_LEVEL: 'loud' }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message.includes('ENGRAM_PORT') &&
        err.message.includes('ENGRAM_LOG_LEVEL'),
    );
  });
});

describe('test runner', () => {
  it('runs every test file under test/', async () => {
    const { readdirSync } = await import('node:fs');
    const found = (readdirSync('test', { recursive: true }) as string[])
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => `test/${f}`)
      .sort();
    const runner = readFileSync('test/run.ts', 'utf8');
    for (const file of found)
      assert.ok(runner.includes(`'${file}'`), `${file} is not in test/run.ts`);
  });
});
