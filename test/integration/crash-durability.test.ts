/**
 * Durability and shutdown of the real process: writes acknowledged before a `kill -9` are all
 * readable after a restart on the same data directory; SIGTERM drains in-flight requests and
 * exits 0 within the shutdown deadline.
 */

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Engram's default ENGRAM_SHUTDOWN_TIMEOUT_MS; the child runs with it. */
const SHUTDOWN_DEADLINE_MS = 10_000;
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
async function startEngram(dataDir: string): Promise<Engram> {
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
  return { child, base, port, key, output: () => output, exited };
}

/** Sends SIGTERM and returns the exit and how long it took. */
async function stopEngram(engram: Engram): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  engram.child.kill('SIGTERM');
  const result = await Promise.race([
    engram.exited,
    sleep(SHUTDOWN_DEADLINE_MS + 5_000).then(() => null),
  ]);
  assert.ok(result, `engram did not exit within ${SHUTDOWN_DEADLINE_MS + 5_000} ms of SIGTERM`);
  return { code: result.code, ms: Date.now() - started };
}

interface Acked {
  id: string;
  content: string;
  userId: string;
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

    const batchWorker = async (worker: number) => {
      for (let i = 0; !stop; i++) {
        const items = Array.from({ length: 50 }, (_, n) => ({
          userId: `batch-user-${worker}`,
          content: `crash batch w${worker} #${i} item ${n}`,
        }));
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
      ...Array.from({ length: 2 }, (_, w) => batchWorker(w)),
    ];
    // A worker that throws before the kill fails the test at once instead of hanging.
    const workersDone = Promise.all(workers);
    let workerFailed = false;
    workersDone.catch(() => {
      workerFailed = true;
    });

    await sleep(300);
    const ackDeadline = Date.now() + 20_000;
    while (singleAcks + batchAcks < 50 && Date.now() < ackDeadline && !workerFailed) {
      await sleep(10);
    }
    assert.ok(singleAcks + batchAcks >= 50, `only ${singleAcks + batchAcks} writes in 20 s`);

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

    const missing: string[] = [];
    const wrong: string[] = [];
    let next = 0;
    const reader = async () => {
      for (let i = next++; i < acked.length; i = next++) {
        const a = acked[i];
        assert.ok(a);
        const res = await fetch(`${second.base}/v1/memories/${a.id}`, {
          headers: { authorization: `Bearer ${second.key}` },
        });
        const text = await res.text();
        if (res.status !== 200) {
          missing.push(`${a.id} → ${res.status}`);
          continue;
        }
        const body = JSON.parse(text) as { id: string; content: string; userId: string };
        if (body.id !== a.id || body.content !== a.content || body.userId !== a.userId) {
          wrong.push(`${a.id}: got ${text.slice(0, 200)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, reader));
    assert.deepEqual(missing.slice(0, 20), [], `${missing.length} acknowledged writes lost`);
    assert.deepEqual(wrong.slice(0, 20), [], `${wrong.length} acknowledged writes changed`);

    const stopped = await stopEngram(second);
    assert.equal(stopped.code, 0, `exit code after SIGTERM:\n${second.output()}`);
    assert.ok(stopped.ms < SHUTDOWN_DEADLINE_MS, `shutdown took ${stopped.ms} ms`);

    t.diagnostic(
      `${acked.length} memories acknowledged (${singleAcks} single writes, ` +
        `${batchAcks} batches) in ${killedAt - burstStart} ms, ${failedInFlight} requests cut ` +
        `by the kill; all readable after restart; SIGTERM exit in ${stopped.ms} ms`,
    );
  });

  test('SIGTERM lets an in-flight batch of 1,000 finish, then exits 0', async () => {
    const dataDir = tempDir();
    const engram = await startEngram(dataDir);

    const items = Array.from({ length: 1_000 }, (_, n) => ({
      userId: 'drain-user',
      content: `graceful drain item ${n} ${'x'.repeat(200)}`,
      tags: ['drain', `n${n % 10}`],
    }));
    const payload = Buffer.from(JSON.stringify({ items }));
    const half = Math.floor(payload.length / 2);

    // The request is provably in flight: headers and half the body are sent before SIGTERM,
    // the rest after, on a connection the server has already accepted.
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: engram.port,
          method: 'POST',
          path: '/v1/memories/batch',
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
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.write(payload.subarray(0, half));
      setTimeout(() => {
        engram.child.kill('SIGTERM');
        setTimeout(() => req.end(payload.subarray(half)), 300);
      }, 300);
    });

    const started = Date.now();
    const result = await response;
    assert.equal(result.status, 201, result.body.slice(0, 500));
    const created = JSON.parse(result.body) as { items: { id: string; content: string }[] };
    assert.equal(created.items.length, 1_000);
    assert.equal(created.items[999]?.content, items[999]?.content);

    const exit = await Promise.race([
      engram.exited,
      sleep(SHUTDOWN_DEADLINE_MS + 5_000).then(() => null),
    ]);
    assert.ok(exit, 'engram did not exit after SIGTERM');
    assert.equal(exit.code, 0, `exit code after SIGTERM:\n${engram.output()}`);
    assert.ok(Date.now() - started < SHUTDOWN_DEADLINE_MS, 'drained within the deadline');

    // New connections are refused once it has stopped.
    await assert.rejects(fetch(`${engram.base}/livez`));

    // The drained batch was committed: a restart reads it back.
    const again = await startEngram(dataDir);
    const first = created.items[0];
    assert.ok(first);
    const res = await fetch(`${again.base}/v1/memories/${first.id}`, {
      headers: { authorization: `Bearer ${again.key}` },
    });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { content: string }).content, items[0]?.content);
    const stopped = await stopEngram(again);
    assert.equal(stopped.code, 0);
  });
});
