import { execFileSync, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { deferCleanup } from './cleanup.ts';
import { freePort } from './server-process.ts';

/** The shared Redis a benchmark may use: REDIS_URL or the local default. */
export const SHARED_REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/**
 * Null when a Redis server answers PING at `url` (AUTH with the URL's password when it has
 * one), else why not. A raw RESP exchange over TCP: no client library, no connection kept.
 */
export function probeRedis(url: string, timeoutMs = 1_500): Promise<string | null> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return Promise.resolve(`not a URL: ${url}`);
  }
  const port = Number(parsed.port || 6379);
  const host = parsed.hostname || '127.0.0.1';
  const password = decodeURIComponent(parsed.password);
  const user = decodeURIComponent(parsed.username);
  const command = (...args: string[]) =>
    `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  const request =
    (password ? command('AUTH', ...(user ? [user] : []), password) : '') + command('PING');
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    let answer = '';
    const done = (problem: string | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(problem);
    };
    const timer = setTimeout(() => done(`no answer in ${timeoutMs} ms`), timeoutMs);
    socket.on('connect', () => socket.write(request));
    socket.on('error', (err) => done(err.message || String(err)));
    socket.on('data', (chunk) => {
      answer += chunk.toString('utf8');
      if (answer.includes('-')) done(`Redis said ${answer.trim()}`);
      else if (answer.includes('+PONG')) done(null);
    });
  });
}

/** The path of `redis-server`, or null when it is not installed. */
export function redisServerBinary(): string | null {
  try {
    return (
      execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim() || null
    );
  } catch {
    return null;
  }
}

/** A Redis server of the benchmark's own, empty, without persistence. */
export interface ThrowawayRedis {
  url: string;
  /** Process id of redis-server (to read its CPU time). */
  pid: number;
  /** Kills the server and waits for it to exit. */
  stop: () => Promise<void>;
}

/**
 * Starts `redis-server` on a free port of 127.0.0.1 with persistence off (`--save ""
 * --appendonly no`): its keys cannot touch the shared Redis, and it is gone after `stop`.
 */
export async function startThrowawayRedis(binary: string): Promise<ThrowawayRedis> {
  const port = await freePort();
  const child = spawn(
    binary,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (chunk: Buffer) => {
    if (output.length < 20_000) output += chunk.toString('utf8');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let gone = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      gone = true;
      resolve();
    }),
  );
  const stop = async () => {
    if (gone) return;
    child.kill('SIGTERM');
    const timeout = await Promise.race([exited, sleep(3_000, 'timeout' as const)]);
    if (timeout === 'timeout') {
      child.kill('SIGKILL');
      await exited;
    }
  };
  const forget = deferCleanup(stop);
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (gone) throw new Error(`redis-server exited:\n${output}`);
    if ((await probeRedis(url, 500)) === null) break;
    if (Date.now() > deadline) {
      await stop();
      forget();
      throw new Error(`redis-server on port ${port} not up in 10 s:\n${output}`);
    }
    await sleep(50);
  }
  return {
    url,
    pid: child.pid ?? -1,
    stop: async () => {
      await stop();
      forget();
    },
  };
}
