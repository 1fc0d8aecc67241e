/**
 * Durability and shutdown of the real process: writes acknowledged before a `kill -9` are all
 * readable after a restart on the same data directory; SIGTERM drains in-flight requests and
 * exits 0 within the shutdown deadline.
 */

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Engram's default ENGRAM_SHUTDOWN_TIMEOUT_MS. */
const DEFAULT_SHUTDOWN_DEADLINE_MS = 10_000;
const START_DEADLINE_MS = 30_000;

/** A port that was free a moment ago (listen on 0, close). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** An Engram child process and how to reach it. */
interface Engram {
  child: ChildProcess;
  base: string;
  port: number;
  key: string;
  /** ENGRAM_SHUTDOWN_TIMEOUT_MS of the child. */
  shutdownDeadlineMs: number;
  /** Everything the child wrote to stdout and stderr so far. */
  output: () => string;
  /** Resolves with (code, signal) when the child exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

after(() => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'engram-crash-'));
  tempDirs.add(dir);
  return dir;
}

/** Starts `engram serve` on `dataDir`, waits for /livez, reads the bootstrap key file. */
async function startEngram(dataDir: string, env: Record<string, string> = {}): Promise<Engram> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve'], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      DATABASE_URL: '',
      ENGRAM_DATA_DIR: dataDir,
      ENGRAM_PORT: String(port),
      ENGRAM_HOST: '127.0.0.1',
      ENGRAM_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  const collect = (chunk: Buffer) => {
    if (output.length < 200_000) output += chunk.toString('utf8');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let gone = false;
  void exited.then(() => {
    gone = true;
  });

  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + START_DEADLINE_MS;
  for (;;) {
    if (gone) throw new Error(`engram exited before it was live:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`engram not live within ${START_DEADLINE_MS} ms:\n${output}`);
    }
    try {
      const res = await fetch(`${base}/livez`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  const key = readFileSync(join(dataDir, 'api-key'), 'utf8').trim();
  assert.match(key, /^egm_/);
  const shutdownDeadlineMs = Number(env.ENGRAM_SHUTDOWN_TIMEOUT_MS ?? DEFAULT_SHUTDOWN_DEADLINE_MS);
  return { child, base, port, key, shutdownDeadlineMs, output: () => output, exited };
}

/** The child's exit, or null when it is still running 5 s after its shutdown deadline. */
function exitOf(
  engram: Engram,
): Promise<{ code: number | null; signal: NodeJS.Signals | null } | null> {
  return Promise.race([
    engram.exited,
    sleep(engram.shutdownDeadlineMs + 5_000, null, { ref: false }),
  ]);
}

/** Sends SIGTERM and returns the exit code and how long the exit took. */
async function stopEngram(engram: Engram): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  engram.child.kill('SIGTERM');
  const result = await exitOf(engram);
  assert.ok(result, `engram still running ${engram.shutdownDeadlineMs + 5_000} ms after SIGTERM`);
  return { code: result.code, ms: Date.now() - started };
}

interface Acked {
  id: string;
  content: string;
  userId: string;
}

/** Every acknowledged memory that does not read back as written (8 readers in parallel). */
async function unreadable(engram: Engram, acked: Acked[]): Promise<string[]> {
  const problems: string[] = [];
  let next = 0;
  const reader = async () => {
    for (let i = next++; i < acked.length; i = next++) {
      const a = acked[i];
      if (!a) continue;
      const res = await fetch(`${engram.base}/v1/memories/${a.id}`, {
        headers: { authorization: `Bearer ${engram.key}` },
      });
      const text = await res.text();
      if (res.status !== 200) {
        problems.push(`${a.id}: ${res.status} ${text.slice(0, 200)}`);
        continue;
      }
      const body = JSON.parse(text) as { id: string; content: string; userId: string };
      if (body.id !== a.id || body.content !== a.content || body.userId !== a.userId) {
        problems.push(`${a.id}: changed: ${text.slice(0, 200)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, reader));
  return problems;
}

/** How many live memories `userId` has (every page of the listing). */
async function countMemories(engram: Engram, userId: string): Promise<number> {
  let count = 0;
  let cursor: string | null = null;
  do {
    const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const res = await fetch(`${engram.base}/v1/users/${userId}/memories?limit=500${query}`, {
      headers: { authorization: `Bearer ${engram.key}` },
    });
    const text = await res.text();
    assert.equal(res.status, 200, text.slice(0, 300));
    const page = JSON.parse(text) as { items: unknown[]; nextCursor: string | null };
    count += page.items.length;
    cursor = page.nextCursor;
  } while (cursor);
  return count;
}

function post(engram: Engram, path: string, body: unknown): Promise<Response> {
  return fetch(`${engram.base}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${engram.key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('crash durability (kill -9) and graceful shutdown', { timeout: 180_000 }, () => {
  test('every write acknowledged before kill -9 is readable after a restart', async (t) => {
    const dataDir = tempDir();
    const first = await startEngram(dataDir);

    const acked: Acked[] = [];
    const rejected: string[] = [];
    let singleAcks = 0;
    let batchAcks = 0;
    let failedInFlight = 0;
    let stop = false;
    let killedAt = 0;

    const singleWorker = async (worker: number) => {
      for (let i = 0; !stop; i++) {
        const item = { userId: `user-${worker % 4}`, content: `crash single w${worker} #${i}` };
        let res: Response;
        let text: string;
        try {
          res = await post(first, '/v1/memories', item);
          text = await res.text();
        } catch (err) {
          if (killedAt === 0) throw err; // only the kill may break a request
          failedInFlight++;
          return;
        }
        if (res.status !== 201) {
          rejected.push(`single ${res.status}: ${text.slice(0, 200)}`);
          continue;
        }
        const body = JSON.parse(text) as { id: string; content: string };
        assert.equal(body.content, item.content);
        acked.push({ id: body.id, content: item.content, userId: item.userId });
        singleAcks++;
      }
    };

    // Each batch has a user of its own, so that its visible size after the crash can be counted.
    const sentBatches: { userId: string; size: number }[] = [];
    const batchWorker = async (worker: number, size: number) => {
      for (let i = 0; !stop; i++) {
        const userId = `batch-${size}-w${worker}-${i}`;
        const items = Array.from({ length: size }, (_, n) => ({
          userId,
          content: `crash batch ${userId} item ${n}`,
        }));
        sentBatches.push({ userId, size });
        let res: Response;
        let text: string;
        try {
          res = await post(first, '/v1/memories/batch', { items });
          text = await res.text();
        } catch (err) {
          if (killedAt === 0) throw err;
          failedInFlight++;
          return;
        }
        if (res.status !== 201) {
          rejected.push(`batch ${res.status}: ${text.slice(0, 200)}`);
          continue;
        }
        const body = JSON.parse(text) as { items: { id: string; content: string }[] };
        assert.equal(body.items.length, items.length);
        body.items.forEach((created, n) => {
          const sent = items[n];
          assert.ok(sent);
          assert.equal(created.content, sent.content);
          acked.push({ id: created.id, content: sent.content, userId: sent.userId });
        });
        batchAcks++;
      }
    };

    const burstStart = Date.now();
    const workers = [
      ...Array.from({ length: 16 }, (_, w) => singleWorker(w)),
      ...Array.from({ length: 2 }, (_, w) => batchWorker(w, 50)),
      // Over 100 items: the SQLite store commits these in chunks within one transaction.
      batchWorker(2, 1_000),
    ];
    // A worker that throws before the kill fails the test at once instead of hanging.
    const workersDone = Promise.all(workers);
    let workerFailed = false;
    workersDone.catch(() => {
      workerFailed = true;
    });

    await sleep(300);
    const ackDeadline = Date.now() + 20_000;
    const enough = () => singleAcks + batchAcks >= 50 && singleAcks > 0 && batchAcks > 0;
    while (!enough() && Date.now() < ackDeadline && !workerFailed) await sleep(10);
    assert.ok(enough(), `only ${singleAcks} single writes and ${batchAcks} batches in 20 s`);

    killedAt = Date.now();
    first.child.kill('SIGKILL');
    const death = await first.exited;
    stop = true;
    await workersDone;
    assert.equal(death.signal, 'SIGKILL');
    assert.deepEqual(rejected, [], 'no write may be refused before the kill');
    assert.ok(acked.length > 0, 'the test must acknowledge writes to mean anything');
    assert.ok(singleAcks > 0, 'some single writes were acknowledged');
    assert.ok(batchAcks > 0, 'some batches were acknowledged');
    const ids = new Set(acked.map((a) => a.id));
    assert.equal(ids.size, acked.length, 'acknowledged ids are distinct');

    const second = await startEngram(dataDir);
    assert.doesNotMatch(second.output(), /created an API key/, 'the key survived in the store');

    const problems = await unreadable(second, acked);
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} acknowledged writes lost`);

    // All or nothing: a batch cut by the kill left no part of itself behind.
    const partial: string[] = [];
    for (const batch of sentBatches) {
      const visible = await countMemories(second, batch.userId);
      if (visible !== 0 && visible !== batch.size) {
        partial.push(`${batch.userId}: ${visible} of ${batch.size}`);
      }
    }
    assert.deepEqual(partial, [], 'batches are atomic across a crash');

    const stopped = await stopEngram(second);
    assert.equal(stopped.code, 0, `exit code after SIGTERM:\n${second.output()}`);
    assert.ok(stopped.ms < second.shutdownDeadlineMs, `shutdown took ${stopped.ms} ms`);

    t.diagnostic(
      `${acked.length} memories acknowledged (${singleAcks} single writes, ` +
        `${batchAcks} of ${sentBatches.length} batches) in ${killedAt - burstStart} ms, ` +
        `${failedInFlight} requests cut by the kill; all readable after restart, no partial ` +
        `batch; SIGTERM exit in ${stopped.ms} ms`,
    );
  });

  test('SIGTERM lets an in-flight batch of 1,000 finish, then exits 0', async () => {
    const dataDir = tempDir();
    const engram = await startEngram(dataDir);
    const items = drainItems();

    // `agent: false`: the client sends `Connection: close`, as a one-shot client does.
    const result = await batchAcrossSigterm(engram, items, false);
    assert.equal(result.status, 201, result.body.slice(0, 500));
    const created = JSON.parse(result.body) as { items: { id: string; content: string }[] };
    assert.equal(created.items.length, items.length);

    const exit = await exitOf(engram);
    assert.ok(exit, `engram did not exit after SIGTERM:\n${engram.output()}`);
    assert.equal(exit.code, 0, `exit code after SIGTERM:\n${engram.output()}`);
    const ms = Date.now() - result.sigtermAt;
    assert.ok(ms < engram.shutdownDeadlineMs, `exit ${ms} ms after SIGTERM`);

    // New connections are refused once it has stopped.
    await assert.rejects(fetch(`${engram.base}/livez`));

    // The drained batch was committed: a restart reads every item back.
    const again = await startEngram(dataDir);
    const problems = await unreadable(
      again,
      created.items.map((c, n) => ({
        id: c.id,
        content: items[n]?.content ?? '',
        userId: 'drain',
      })),
    );
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} drained items unreadable`);
    const stopped = await stopEngram(again);
    assert.equal(stopped.code, 0);
  });

  test('SIGTERM also ends a keep-alive connection whose request was in flight', async () => {
    const engram = await startEngram(tempDir(), { ENGRAM_SHUTDOWN_TIMEOUT_MS: '3000' });
    // A client that keeps idle connections open, as undici (fetch) and proxies do.
    const agent = new Agent({ keepAlive: true });
    try {
      const result = await batchAcrossSigterm(engram, drainItems(), agent);
      assert.equal(result.status, 201, result.body.slice(0, 500));
      const exit = await exitOf(engram);
      assert.ok(exit, 'engram did not exit after SIGTERM');
      assert.equal(exit.code, 0, `exit code after SIGTERM:\n${engram.output()}`);
    } finally {
      agent.destroy();
    }
  });
});

/** 1,000 memories of ~250 bytes each: a batch that takes a while to parse and commit. */
function drainItems(): { userId: string; content: string; tags: string[] }[] {
  return Array.from({ length: 1_000 }, (_, n) => ({
    userId: 'drain',
    content: `graceful drain item ${n} ${'x'.repeat(200)}`,
    tags: ['drain', `n${n % 10}`],
  }));
}

/**
 * POSTs a batch that is provably in flight at SIGTERM: the headers and half the body go out,
 * SIGTERM follows 300 ms later, and the rest of the body 300 ms after that, on a connection
 * the server accepted before it began to close.
 */
function batchAcrossSigterm(
  engram: Engram,
  items: unknown[],
  agent: Agent | false,
): Promise<{ status: number; body: string; sigtermAt: number }> {
  const payload = Buffer.from(JSON.stringify({ items }));
  const half = Math.floor(payload.length / 2);
  let sigtermAt = 0;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: engram.port,
        method: 'POST',
        path: '/v1/memories/batch',
        agent,
        headers: {
          authorization: `Bearer ${engram.key}`,
          'content-type': 'application/json',
          'content-length': String(payload.length),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            sigtermAt,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.write(payload.subarray(0, half));
    setTimeout(() => {
      sigtermAt = Date.now();
      engram.child.kill('SIGTERM');
      setTimeout(() => req.end(payload.subarray(half)), 300);
    }, 300);
  });
}
