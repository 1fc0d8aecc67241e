import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { deferCleanup } from './cleanup.ts';
import { createBenchSchema } from './postgres.ts';

/** Root of the repository (the children's working directory). */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The server as `npm start` runs it: the compiled `dist/cli/main.js` (not through tsx, whose
 * loader thread adds ≈ 45 MiB to the process). Compiled once per bench process, from the
 * working tree, by {@link ensureBuilt}.
 */
const SERVER_MAIN = 'dist/cli/main.js';

let built: Promise<void> | undefined;

/** Compiles the server (`tsc -p tsconfig.build.json`) once per bench process. */
export function ensureBuilt(): Promise<void> {
  built ??= promisify(execFile)(
    process.execPath,
    [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    { cwd: REPO_ROOT, timeout: 300_000 },
  ).then(() => undefined);
  return built;
}

/** Engram's stores. */
export type StoreKind = 'sqlite' | 'postgres';

/** A port that was free a moment ago (listen on 0, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

/** A child process with its collected output and its exit. */
export interface Child {
  process: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  /** True once the child has exited. */
  gone: () => boolean;
}

/**
 * The `ENGRAM_` settings in this process's environment: every server it starts inherits them,
 * so a report says which defaults they changed.
 */
export function inheritedSettings(): string[] {
  return Object.entries(process.env)
    .filter(([name]) => name.startsWith('ENGRAM_'))
    .map(([name, value]) => `${name}=${value}`)
    .sort();
}

/** Spawns `node args…` in the repository root with `env` added to this process's env. */
export function spawnNode(args: string[], env: Record<string, string>): Child {
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let done = false;
  const collect = (chunk: Buffer) => {
    if (output.length < 100_000) output += chunk.toString('utf8');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      done = true;
      resolve(code);
    }),
  );
  return { process: child, output: () => output, exited, gone: () => done };
}

/** Polls `url` until it answers 2xx; fails when the child exits or the deadline passes. */
export async function waitUntilUp(url: string, child: Child, deadlineMs = 30_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    if (child.gone()) throw new Error(`${url}: the process exited:\n${child.output()}`);
    if (Date.now() > deadline) throw new Error(`${url}: not up in ${deadlineMs} ms`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
}

/** SIGTERM, then SIGKILL when the child is still there after `graceMs`. Returns the exit code. */
export async function stopChild(child: Child, graceMs = 15_000): Promise<number | null> {
  if (child.gone()) return child.exited;
  child.process.kill('SIGTERM');
  // The grace timer must not keep the bench alive once the child has exited.
  const code = await Promise.race([
    child.exited,
    sleep(graceMs, 'timeout' as const, { ref: false }),
  ]);
  if (code !== 'timeout') return code;
  child.process.kill('SIGKILL');
  await child.exited;
  return null;
}

/** A running Engram server. */
export interface EngramServer {
  store: StoreKind;
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** An API key of the server's tenant. */
  key: string;
  /** Process id of the server (to read its CPU time). */
  pid: number;
  output: () => string;
  /** SIGTERM, wait, remove the data dir and (PostgreSQL) drop the schema; returns the exit code. */
  stop: () => Promise<number | null>;
}

/** Where an Engram server keeps its SQLite data. */
export interface EngramDataOptions {
  /**
   * Use this directory as is and leave it in place on `stop` (its owner removes it), e.g. to
   * seed data once and start later servers from copies of it. SQLite only.
   */
  dataDir?: string;
  /** Start from a copy of this directory (a stopped server's data), removed on `stop`. */
  copyFrom?: string;
}

/**
 * Node flags of a server child: with `BENCH_CPU_PROF=<dir>` in the bench's environment every
 * Engram and ceiling server writes a V8 CPU profile (`--cpu-prof`) into `<dir>` when it exits
 * (`CPU.<date>.<time>.<pid>.0.*.cpuprofile`; open it in Chrome DevTools or speedscope).
 */
export function profileFlags(): string[] {
  // BENCH_NODE_FLAGS: more Node flags for every server child (e.g. `--trace-gc`, which
  // NODE_OPTIONS refuses), split on spaces.
  const extra = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
  const dir = process.env.BENCH_CPU_PROF;
  if (!dir) return extra;
  mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`, ...extra];
}

/**
 * Starts `engram serve` (compiled: {@link ensureBuilt}) as a child process on a fresh data directory (SQLite) or a fresh
 * schema (PostgreSQL, dropped by `stop`), and gets an API key: the bootstrap key file in
 * SQLite mode, `engram keys create --tenant bench` in PostgreSQL mode.
 */
export async function startEngram(
  store: StoreKind,
  env: Record<string, string> = {},
  data: EngramDataOptions = {},
): Promise<EngramServer> {
  const ownsDir = data.dataDir === undefined;
  const dataDir = data.dataDir ?? mkdtempSync(join(tmpdir(), `engram-bench-${store}-`));
  const forgetDir = ownsDir
    ? deferCleanup(() => rmSync(dataDir, { recursive: true, force: true }))
    : () => undefined;
  if (data.copyFrom) cpSync(data.copyFrom, dataDir, { recursive: true });
  const schema = store === 'postgres' ? await createBenchSchema() : null;
  const forgetSchema = schema ? deferCleanup(schema.drop) : () => undefined;
  const port = await freePort();
  const childEnv: Record<string, string> = {
    DATABASE_URL: schema?.url ?? '',
    ENGRAM_DATA_DIR: dataDir,
    ENGRAM_PORT: String(port),
    ENGRAM_HOST: '127.0.0.1',
    ENGRAM_LOG_LEVEL: 'warn',
    ...env,
  };

  await ensureBuilt();
  let key: string | undefined;
  if (schema) key = await createKey(childEnv, 'bench');

  const child = spawnNode([...profileFlags(), SERVER_MAIN, 'serve'], childEnv);
  const forgetChild = deferCleanup(async () => {
    await stopChild(child, 5_000);
  });
  const base = `http://127.0.0.1:${port}`;
  await waitUntilUp(`${base}/livez`, child);
  key ??= readFileSync(join(dataDir, 'api-key'), 'utf8').trim();

  return {
    store,
    base,
    key,
    pid: child.process.pid ?? -1,
    output: child.output,
    stop: async () => {
      const code = await stopChild(child);
      forgetChild();
      if (schema) {
        await schema.drop();
        forgetSchema();
      }
      if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
      forgetDir();
      return code;
    },
  };
}

/** Runs `engram keys create --tenant <tenant>` with `env`; returns the printed key. */
async function createKey(env: Record<string, string>, tenant: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [SERVER_MAIN, 'keys', 'create', '--tenant', tenant],
    { cwd: REPO_ROOT, env: { ...process.env, ...env }, timeout: 60_000 },
  );
  const line = stdout.split('\n').find((l) => l.trim().startsWith('egm_'));
  if (!line) throw new Error(`keys create printed no key:\n${stdout}`);
  return line.trim();
}
