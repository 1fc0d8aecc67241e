import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createContext, type ServiceContext } from '../../src/context.ts';
import type { Store } from '../../src/store/store.ts';
import type { Clock } from '../../src/util/clock.ts';

/** An app built without a socket, with a key for tenant `acme` and one for tenant `other`. */
export interface TestApp {
  app: FastifyInstance;
  ctx: ServiceContext;
  /** Key of tenant `acme`. */
  key: string;
  /** Key of tenant `other`. */
  otherKey: string;
  /** `app.inject` with `acme`'s key unless `headers.authorization` is given. */
  call: (options: InjectOptions) => Promise<LightMyRequestResponse>;
  close: () => Promise<void>;
}

/** Builds an app over `store` (default: SQLite in a temporary directory). */
export async function testApp(
  options: { store?: Store; clock?: Clock; env?: Record<string, string> } = {},
): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'engram-app-'));
  const config = loadConfig({ ENGRAM_DATA_DIR: dir, ENGRAM_LOG_LEVEL: 'silent', ...options.env });
  const overrides: { store?: Store; clock?: Clock } = {};
  if (options.store) overrides.store = options.store;
  if (options.clock) overrides.clock = options.clock;
  const ctx = await createContext(config, pino({ level: 'silent' }), overrides);
  const app = await buildApp(ctx);
  await app.ready();
  const key = (await ctx.keys.create('acme')).key;
  const otherKey = (await ctx.keys.create('other')).key;
  return {
    app,
    ctx,
    key,
    otherKey,
    call: (o) =>
      app.inject({
        ...o,
        headers: { authorization: `Bearer ${key}`, ...o.headers },
      } as InjectOptions),
    close: async () => {
      await app.close();
      await ctx.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A clock the test moves by hand. */
export class FakeClock implements Clock {
  time: number;
  constructor(time = Date.parse('2026-01-01T00:00:00Z')) {
    this.time = time;
  }
  now(): number {
    return this.time;
  }
  advance(ms: number): void {
    this.time += ms;
  }
}
