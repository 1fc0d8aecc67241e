/**
 * The mix's reading of the log's flushes around a run (bench/lib/disk-waits.ts): against a
 * server answering `GET /v1/stats/store` with counters that move between the two readings.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { diskWaits, withDiskWaits } from '../../bench/lib/disk-waits.ts';

describe('disk waits of a run', () => {
  it('turns two readings into flushes per second, their mean and the busy share', () => {
    const d = diskWaits({ count: 10, ms: 20, maxMs: 5 }, { count: 110, ms: 520, maxMs: 9 }, 2);
    assert.deepEqual(d, { perSec: 50, meanMs: 5, busy: 0.25, maxMs: 9 });
    assert.equal(
      diskWaits({ count: 3, ms: 4, maxMs: 2 }, { count: 3, ms: 4, maxMs: 2 }, 1).meanMs,
      0,
    );
  });

  it('reads the stats before and after the work, with the key; null without log flushes', async () => {
    const readings = [
      { dialect: 'sqlite', walFlushes: { count: 0, ms: 0, maxMs: 0 } },
      { dialect: 'sqlite', walFlushes: { count: 40, ms: 100, maxMs: 7 } },
      { dialect: 'postgres', pool: { total: 1, idle: 1, waiting: 0, max: 10 } },
      { dialect: 'postgres', pool: { total: 1, idle: 1, waiting: 0, max: 10 } },
    ];
    const auth: Array<string | undefined> = [];
    const server = createServer((req, res) => {
      auth.push(req.headers.authorization);
      assert.equal(req.url, '/v1/stats/store');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(readings.shift()));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const sqlite = await withDiskWaits(base, 'k1', async () => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        return 'done';
      });
      assert.equal(sqlite.result, 'done');
      assert.ok(sqlite.disk !== null);
      assert.equal(sqlite.disk.meanMs, 2.5);
      assert.equal(sqlite.disk.maxMs, 7);
      // 100 ms of flushing over a run of about 50 ms: a 50-ms timer may fire a millisecond
      // early by performance.now() (libuv's loop time is whole milliseconds; busy 2.003 seen).
      assert.ok(sqlite.disk.busy > 0 && sqlite.disk.busy <= 100 / 45, JSON.stringify(sqlite.disk));
      const postgres = await withDiskWaits(base, 'k1', async () => 1);
      assert.equal(postgres.disk, null);
      assert.deepEqual(auth, Array(4).fill('Bearer k1'));
    } finally {
      server.close();
    }
  });
});
