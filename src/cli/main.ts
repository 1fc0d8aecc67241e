#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { ConfigError, loadConfig } from '../config.ts';
import { createContext } from '../context.ts';
import { serve } from '../server.ts';
import { openStore } from '../store/open-store.ts';

const USAGE = `Usage: engram [command]

Commands:
  serve                                  Start the server (default)
  migrate                                Apply pending store migrations and exit
  keys create --tenant NAME [--label T]  Create an API key (printed once)
  keys list                              List keys (ids, tenants, state; never secrets)
  keys revoke ID                         Revoke a key

Configuration comes from the environment; see .env.example.`;

async function withContext<T>(
  run: (ctx: Awaited<ReturnType<typeof createContext>>) => Promise<T>,
): Promise<T> {
  const config = loadConfig();
  const ctx = await createContext(config, pino({ level: 'warn' }));
  try {
    return await run(ctx);
  } finally {
    await ctx.close();
  }
}

async function keys(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { tenant: { type: 'string' }, label: { type: 'string' } },
  });
  const [action, id] = positionals;
  if (action === 'create') {
    if (!values.tenant) {
      process.stderr.write('keys create needs --tenant NAME\n');
      return 2;
    }
    const tenant = values.tenant;
    const created = await withContext((ctx) => ctx.keys.create(tenant, values.label ?? null));
    process.stdout.write(
      `Created key ${created.id} for tenant "${created.tenant}". It is shown only now:\n${created.key}\n`,
    );
    return 0;
  }
  if (action === 'list') {
    const rows = await withContext((ctx) => ctx.keys.list());
    for (const k of rows) {
      const state =
        k.revokedAt === null ? 'active' : `revoked ${new Date(k.revokedAt).toISOString()}`;
      process.stdout.write(
        `${k.id}\t${k.tenant}\t${new Date(k.createdAt).toISOString()}\t${state}\t${k.label ?? ''}\n`,
      );
    }
    return 0;
  }
  if (action === 'revoke' && id) {
    const done = await withContext((ctx) => ctx.keys.revoke(id));
    process.stdout.write(done ? `Revoked ${id}\n` : `No active key ${id}\n`);
    return done ? 0 : 1;
  }
  process.stderr.write(`${USAGE}\n`);
  return 2;
}

async function main(argv: string[]): Promise<number> {
  const [command = 'serve', ...rest] = argv;
  switch (command) {
    case 'serve':
      await serve(loadConfig());
      return -1; // keeps running
    case 'migrate': {
      const config = loadConfig();
      const store = openStore(config.store, pino({ level: 'warn' }));
      try {
        const applied = await store.migrate();
        process.stdout.write(`Applied ${applied} migration(s) to the ${store.dialect} store.\n`);
      } finally {
        await store.close();
      }
      return 0;
    }
    case 'keys':
      return keys(rest);
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      process.stderr.write(`Unknown command "${command}".\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      err instanceof ConfigError || err instanceof RangeError
        ? `${err.message}\n`
        : `engram failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
