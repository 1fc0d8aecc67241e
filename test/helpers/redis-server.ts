import { type ChildProcess, spawn } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A throwaway `redis-server` child process (never the shared one on 6379). */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** SIGKILL, like a crash: no shutdown, connections reset. Resolves once it has exited. */
  stop(): Promise<void>;
  /** SIGSTOP: connections stay open, nothing answers (a hung server). */
  pause(): void;
  /** SIGCONT after {@link pause}. */
  resume(): void;
  /** Whether the process is running. */
  readonly running: boolean;
  /** What the server printed (for failure messages). */
  output(): string;
}

/** A port that was free a moment ago (never 6379: listen on 0, close). */
export async function freePort(): Promise<number> {
  for (;;) {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const address = server.address();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (address === null || typeof address === 'string') throw new Error('no port');
    if (address.port !== 6379) return address.port;
  }
}

/** Whether something answers a Redis PING on `port` now. */
async function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let text = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      text += chunk.toString();
      if (text.includes('\r\n')) done(text.startsWith('+PONG'));
    });
  });
}

const started = new Set<ChildProcess>();

// A test that fails before its after hook must not leave servers behind.
process.once('exit', () => {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

/**
 * Starts `redis-server` on `port` (default: a free one; pass the port of a stopped server to
 * bring "it" back), with no persistence, bound to 127.0.0.1, in the foreground; resolves once
 * it answers PING.
 */
export async function startRedisServer(port?: number): Promise<RedisServer> {
  if (port === 6379) throw new Error('refusing to start a throwaway redis-server on 6379');
  const chosen = port ?? (await freePort());
  const child = spawn(
    'redis-server',
    [
      '--save',
      '',
      '--appendonly',
      'no',
      '--port',
      String(chosen),
      '--bind',
      '127.0.0.1',
      '--daemonize',
      'no',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  started.add(child);
  let output = '';
  const collect = (chunk: Buffer): void => {
    if (output.length < 50_000) output += chunk.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });

  const deadline = Date.now() + 10_000;
  for (;;) {
    if (spawnError) throw new Error(`redis-server did not start: ${spawnError.message}`);
    if (child.exitCode !== null) throw new Error(`redis-server exited at once:\n${output}`);
    if (await pings(chosen)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server on ${chosen} not answering within 10 s:\n${output}`);
    }
    await sleep(50);
  }
  return {
    port: chosen,
    url: `redis://127.0.0.1:${chosen}`,
    get running() {
      return child.exitCode === null && child.signalCode === null;
    },
    output: () => output,
    pause() {
      child.kill('SIGSTOP');
    },
    resume() {
      child.kill('SIGCONT');
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      }
      await exited;
      started.delete(child);
    },
  };
}
