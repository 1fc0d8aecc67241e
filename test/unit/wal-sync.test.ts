/**
 * The off-loop WAL flush (wal-sync.ts) and the group commit's answers waiting for it
 * (group-commit.ts): commits are answered only once a flush that began after them completed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { GroupCommit, type Outcome } from '../../src/store/sqlite/group-commit.ts';
import { WalSync } from '../../src/store/sqlite/wal-sync.ts';

const dir = mkdtempSync(join(tmpdir(), 'engram-wal-sync-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('WalSync', () => {
  it('resolves at once for an in-memory database', async () => {
    await new WalSync(null).sync();
  });

  it('flushes the file; calls during a flush share the next one, never the running one', async () => {
    const file = join(dir, 'a-wal');
    writeFileSync(file, 'frames');
    const wal = new WalSync(file);
    const first = wal.sync();
    const second = wal.sync();
    const third = wal.sync();
    assert.notEqual(first, second, 'a call during a flush must not join it');
    assert.equal(second, third, 'calls during one flush share the next');
    await Promise.all([first, second, third]);
    // Nothing running any more: a new call starts a new flush.
    const fourth = wal.sync();
    assert.notEqual(fourth, third);
    await fourth;
    // Three flushes ran: the first, the one the second and third shared, the fourth.
    const { count, ms, maxMs } = wal.flushes;
    assert.equal(count, 3);
    assert.ok(ms > 0 && maxMs > 0 && maxMs <= ms, JSON.stringify(wal.flushes));
    await wal.close();
  });

  it('fails when the file cannot be flushed, and opens it again on the next call', async () => {
    const file = join(dir, 'b-wal');
    const wal = new WalSync(file);
    await assert.rejects(wal.sync(), { code: 'ENOENT' });
    assert.equal(wal.flushes.count, 0, 'a failed flush is not counted');
    writeFileSync(file, 'frames');
    await wal.sync();
    assert.equal(wal.flushes.count, 1);
    await wal.close();
  });
});

describe('GroupCommit answers once the commit is durable', () => {
  const commitAll = (works: Array<() => unknown>): Outcome[] =>
    works.map((work): Outcome => {
      try {
        return { ok: true, value: work() };
      } catch (error) {
        return { ok: false, error };
      }
    });
  const now = async (flush: () => void) => flush();

  it('resolves committed units after the flush, rejects a failed unit at once', async () => {
    let release: () => void = () => undefined;
    const flushed = new Promise<void>((resolve) => {
      release = resolve;
    });
    const group = new GroupCommit(commitAll, now, () => flushed);
    const settled: string[] = [];
    const ok = group.add(() => 'written').then((v) => settled.push(`ok:${v}`));
    const bad = group
      .add(() => {
        throw new Error('constraint');
      })
      .catch((err: Error) => settled.push(`bad:${err.message}`));
    await bad;
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(settled, ['bad:constraint'], 'a committed unit must wait for the flush');
    release();
    await ok;
    assert.deepEqual(settled, ['bad:constraint', 'ok:written']);
  });

  it('rejects the committed units when the flush fails', async () => {
    const group = new GroupCommit(commitAll, now, () => Promise.reject(new Error('EIO')));
    await assert.rejects(
      group.add(() => 1),
      /EIO/,
    );
  });
});
