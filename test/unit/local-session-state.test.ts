/**
 * Active sessions kept in this process (local-session-state.ts): the rules of Redis's copies
 * (newer states only, ended never replaced, nothing put while the user is erased), the window
 * (id order, the newest kept), expiry a minute after the session's, and the byte bound.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalSessionState } from '../../src/sessions/local-session-state.ts';
import type { WindowMessage } from '../../src/sessions/session-hot-state.ts';
import type { SessionRow } from '../../src/sessions/session-types.ts';
import { FakeClock } from '../helpers/app.ts';

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 10, 28, 12);

function session(over: Partial<SessionRow> = {}): SessionRow {
  return {
    tenant: 'acme',
    id: 's1',
    userId: 'u1',
    agentId: null,
    state: 'active',
    createdAt: T0,
    lastActivityAt: T0,
    expiresAt: T0 + 30 * MINUTE,
    endedAt: null,
    timeoutMs: 30 * MINUTE,
    timeoutBasis: {
      source: 'default',
      withinGaps: 0,
      betweenGaps: 0,
      quantile: 0.95,
      quantileMs: null,
      margin: 1,
      clamped: null,
      betweenMedianMs: null,
    },
    messageCount: 0,
    summaryId: null,
    ...over,
  };
}

const message = (n: number, content = `message ${n}`): WindowMessage => ({
  id: `m${String(n).padStart(4, '0')}`,
  role: 'user',
  content,
  at: T0 + n,
});

function setup(window = 3) {
  const clock = new FakeClock(T0);
  return { clock, hot: new LocalSessionState(window, clock) };
}

describe('LocalSessionState', () => {
  it('holds a put session, keyed by tenant and id', async () => {
    const { hot } = setup();
    await hot.put(session(), T0);
    assert.equal((await hot.get('acme', 's1'))?.session.id, 's1');
    assert.deepEqual((await hot.get('acme', 's1'))?.window, []);
    assert.equal(await hot.get('other', 's1'), null);
    assert.equal(await hot.get('acme', 's2'), null);
    assert.equal(hot.source, 'memory');
  });

  it('replaces a copy only with a newer state, and keeps its window', async () => {
    const { hot } = setup();
    await hot.put(session({ messageCount: 2, lastActivityAt: T0 + 10 }), T0);
    await hot.pushWindow(session(), [message(1), message(2)], T0);
    await hot.put(session({ messageCount: 1, lastActivityAt: T0 + 20 }), T0);
    await hot.put(session({ messageCount: 2, lastActivityAt: T0 + 5 }), T0);
    assert.equal((await hot.get('acme', 's1'))?.session.lastActivityAt, T0 + 10);
    await hot.put(session({ messageCount: 2, lastActivityAt: T0 + 11 }), T0);
    assert.equal((await hot.get('acme', 's1'))?.session.lastActivityAt, T0 + 11);
    await hot.put(session({ messageCount: 3, lastActivityAt: T0 + 11 }), T0);
    const held = await hot.get('acme', 's1');
    assert.equal(held?.session.messageCount, 3);
    assert.deepEqual(
      held?.window.map((m) => m.id),
      ['m0001', 'm0002'],
    );
  });

  it('keeps a copy of what was put: the caller changing its object changes nothing held', async () => {
    const { hot } = setup();
    const s = session({ messageCount: 1 });
    await hot.put(s, T0);
    s.messageCount = 99;
    assert.equal((await hot.get('acme', 's1'))?.session.messageCount, 1);
  });

  it('keeps the window in id order, the newest only; replace sets it exactly', async () => {
    const { hot } = setup(3);
    await hot.put(session(), T0);
    await hot.pushWindow(session(), [message(2), message(1)], T0);
    await hot.pushWindow(session(), [message(4), message(3)], T0);
    assert.deepEqual(
      (await hot.get('acme', 's1'))?.window.map((m) => m.id),
      ['m0002', 'm0003', 'm0004'],
    );
    await hot.pushWindow(session(), [message(9)], T0, true);
    assert.deepEqual(
      (await hot.get('acme', 's1'))?.window.map((m) => m.id),
      ['m0009'],
    );
  });

  it('pushes no window without a held active state', async () => {
    const { hot } = setup();
    await hot.pushWindow(session(), [message(1)], T0);
    assert.equal(await hot.get('acme', 's1'), null);
    await hot.put(session(), T0);
    await hot.ended(session({ state: 'ended', endedAt: T0 }));
    await hot.pushWindow(session(), [message(2)], T0);
    assert.deepEqual((await hot.get('acme', 's1'))?.window, []);
  });

  it('never replaces an ended copy, and drops its window', async () => {
    const { hot } = setup();
    await hot.put(session(), T0);
    await hot.pushWindow(session(), [message(1)], T0);
    await hot.ended(session({ state: 'ended', endedAt: T0, messageCount: 1 }));
    await hot.put(session({ messageCount: 5, lastActivityAt: T0 + 1 }), T0);
    const held = await hot.get('acme', 's1');
    assert.equal(held?.session.state, 'ended');
    assert.deepEqual(held?.window, []);
  });

  it('puts nothing for a user being erased; erased copies are gone, and stay away a minute', async () => {
    const { hot, clock } = setup();
    await hot.put(session(), T0);
    await hot.put(session({ id: 's2' }), T0);
    await hot.put(session({ id: 's3', userId: 'u2' }), T0);
    assert.equal(await hot.erasing('acme', 'u1'), true);
    // A start racing the erasure.
    await hot.put(session({ id: 's4' }), T0);
    assert.equal(await hot.get('acme', 's4'), null);
    assert.equal(await hot.erased('acme', 'u1', ['s1', 's2']), true);
    assert.equal(await hot.get('acme', 's1'), null);
    assert.equal(await hot.get('acme', 's2'), null);
    assert.equal((await hot.get('acme', 's3'))?.session.userId, 'u2');
    // A late append of an erased session, within the minute: not put back.
    clock.advance(30_000);
    await hot.put(session({ messageCount: 1 }), clock.now());
    assert.equal(await hot.get('acme', 's1'), null);
    clock.advance(31_000);
    await hot.put(session({ id: 's5' }), clock.now());
    assert.equal((await hot.get('acme', 's5'))?.session.id, 's5');
  });

  it("stops serving a copy a minute after its session's expiry; activity moves that on", async () => {
    const { hot, clock } = setup();
    await hot.put(session(), T0);
    clock.advance(30 * MINUTE + 59_000);
    assert.ok(await hot.get('acme', 's1'));
    const later = session({
      messageCount: 1,
      lastActivityAt: clock.now(),
      expiresAt: clock.now() + 30 * MINUTE,
    });
    await hot.put(later, clock.now());
    clock.advance(20 * MINUTE);
    assert.ok(await hot.get('acme', 's1'));
    clock.advance(11 * MINUTE);
    assert.equal(await hot.get('acme', 's1'), null);
  });

  it('is bounded in bytes: the least recently used copies go first', async () => {
    const { hot } = setup(20);
    const big = 'x'.repeat(10_000);
    for (let i = 0; i < 2_000; i++) {
      const s = session({ id: `s${i}` });
      await hot.put(s, T0);
      await hot.pushWindow(
        s,
        Array.from({ length: 20 }, (_, n) => message(n, big)),
        T0,
      );
    }
    let held = 0;
    for (let i = 0; i < 2_000; i++) if (await hot.get('acme', `s${i}`)) held++;
    // 20 × 10,000 characters a window: ≈ 400 kB a copy, 16 MiB hold about 40.
    assert.ok(held > 0 && held <= 45, `${held} copies held`);
    assert.ok(await hot.get('acme', 's1999'), 'the newest is held');
    assert.equal(await hot.get('acme', 's0'), null);
  });
});
