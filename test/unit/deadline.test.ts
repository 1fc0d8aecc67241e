/**
 * The lag-tolerant deadline: a promise raced against a timer that, when it fires, lets the
 * poll phase read what already arrived (one setImmediate) before failing. Fake promises only;
 * the socket case uses a TCP server in a child process, no Redis.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { describe, it } from 'node:test';
import { DeadlineExceeded, withDeadline } from '../../src/cache/deadline.ts';

/** Holds the event loop synchronously, like CPU work or a GC pause. */
function block(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy
  }
}

/** A promise with its settlers outside. */
function deferred<T>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** The naive race (what ioredis's commandTimeout does): rejects as soon as the timer fires. */
function naiveDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DeadlineExceeded(ms)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

const timeouts = (): number =>
  process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('withDeadline', () => {
  it('resolves with the value when the promise resolves in time', async () => {
    const d = deferred<string>();
    const raced = withDeadline(d.promise, 200);
    setTimeout(() => d.resolve('ok'), 10);
    assert.equal(await raced, 'ok');
  });

  it('passes the promise’s own rejection through', async () => {
    const d = deferred<string>();
    const raced = withDeadline(d.promise, 200);
    d.reject(new Error('refused'));
    await assert.rejects(raced, /refused/);
  });

  it('rejects with DeadlineExceeded when the promise never settles', async () => {
    const started = Date.now();
    const raced = withDeadline(new Promise<never>(() => undefined), 30);
    const err = await raced.then(
      () => assert.fail('must not resolve'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof DeadlineExceeded);
    assert.equal(err.ms, 30);
    assert.match(err.message, /30 ms/);
    assert.ok(Date.now() - started >= 25, 'not before the deadline');
  });

  it('clears its timer when the promise settles first', async () => {
    const before = timeouts();
    const d = deferred<number>();
    const raced = withDeadline(d.promise, 60_000);
    assert.equal(timeouts(), before + 1);
    d.resolve(1);
    await raced;
    assert.equal(timeouts(), before);
    const e = deferred<number>();
    const failed = withDeadline(e.promise, 60_000);
    e.reject(new Error('x'));
    await assert.rejects(failed);
    assert.equal(timeouts(), before);
  });

  it('does not reject a promise settled in the same loop turn as the timer (setImmediate queued first)', async () => {
    for (const race of [withDeadline, naiveDeadline]) {
      const d = deferred<string>();
      // Same delay, registered first: both timers fire in one timers phase after the block;
      // the answer is settled from the check phase, as an already-queued immediate.
      setTimeout(() => setImmediate(() => d.resolve('answered')), 20);
      const raced = race(d.promise, 20);
      block(80);
      const outcome = await raced.then(
        (v) => v,
        (e: unknown) => e,
      );
      if (race === withDeadline) assert.equal(outcome, 'answered');
      // The naive race rejects here: proof that this case tells the two apart.
      else assert.ok(outcome instanceof DeadlineExceeded, 'the naive race rejects');
    }
  });

  it('does not reject an answer that arrived on a socket while the event loop was blocked', async () => {
    // The server is another process: it answers while this one is blocked.
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const s = require('node:net').createServer((c) => c.on('data', () => c.write('+PONG\\r\\n')));
         s.listen(0, '127.0.0.1', () => console.log(s.address().port));`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const [line] = (await once(child.stdout, 'data')) as [Buffer];
      const client = createConnection({ host: '127.0.0.1', port: Number(line.toString()) });
      await once(client, 'connect');
      try {
        for (const race of [withDeadline, naiveDeadline]) {
          const answer = deferred<string>();
          client.once('data', (chunk: Buffer) => answer.resolve(chunk.toString()));
          client.write('PING\r\n');
          const raced = race(answer.promise, 20);
          block(150);
          const outcome = await raced.then(
            (v) => v,
            (e: unknown) => e,
          );
          if (race === withDeadline) assert.equal(outcome, '+PONG\r\n');
          else assert.ok(outcome instanceof DeadlineExceeded, 'the naive race rejects');
          await answer.promise;
        }
      } finally {
        client.destroy();
      }
    } finally {
      child.kill();
    }
  });
});
