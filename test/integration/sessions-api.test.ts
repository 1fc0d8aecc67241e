/**
 * Sessions over the real app: every route's happy path and refusals (SQLite), the preload
 * bundle (reasons, de-duplication, budget), read-your-writes through the search index,
 * consolidation that counts every message (ended and expired sessions), the adaptive idle
 * timeout learned through the API, expiry across a restart, two instances sharing PostgreSQL
 * and Redis (hot state, concurrent sweepers), and Redis down.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep, setImmediate as tick } from 'node:timers/promises';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createContext, type ServiceContext } from '../../src/context.ts';
import { newMemoryId } from '../../src/memory/ids.ts';
import { answeredRows } from '../../src/search/answered-rows.ts';
import { SessionHotState } from '../../src/sessions/session-hot-state.ts';
import type { SessionRow } from '../../src/sessions/session-types.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { FakeClock, type TestApp, testApp } from '../helpers/app.ts';
import { freePort } from '../helpers/redis-server.ts';
import { needs, pgSchema, REDIS_URL } from '../helpers/services.ts';
import { openSqlite } from '../helpers/stores.ts';

// ---------------------------------------------------------------------------------------------
// Shapes and helpers
// ---------------------------------------------------------------------------------------------

interface Basis {
  source: 'default' | 'learned';
  withinGaps: number;
  betweenGaps: number;
  quantile: number;
  quantileMs: number | null;
  margin: number;
  clamped: 'min' | 'max' | null;
  betweenMedianMs: number | null;
}
interface Session {
  id: string;
  userId: string;
  agentId: string | null;
  state: 'active' | 'ended' | 'expired';
  createdAt: string;
  lastActivityAt: string;
  expiresAt: string;
  endedAt: string | null;
  timeout: { ms: number; basis: Basis };
  messageCount: number;
  summaryId: string | null;
}
interface Memory {
  id: string;
  userId: string;
  agentId: string | null;
  sessionId: string | null;
  content: string;
  kind: string;
  tags: string[];
  metadata: Record<string, unknown>;
  importance: number;
  pinned: boolean;
  createdAt: string;
}
interface Preload {
  items: { memory: Memory; reasons: string[] }[];
  budgetChars: number;
  usedChars: number;
  truncated: boolean;
  source: 'index' | 'built' | 'store';
}
interface Started {
  session: Session;
  preload: Preload;
  timing: string;
}
interface View {
  session: Session;
  window: { id: string; role: string; content: string; at: string }[];
  source: 'redis' | 'store';
}
interface Message {
  role: 'user' | 'assistant' | 'system' | 'tool';
  content: string;
  at?: string;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DEFAULT_TIMEOUT_MS = 30 * MINUTE;
const MIN_TIMEOUT_MS = 2 * MINUTE;
const UNKNOWN_ID = '01ARZ3NDEKTSV4RRFFQ69G5FAV';

const ms = (iso: string | null): number => Date.parse(iso ?? 'invalid');
const iso = (time: number): string => new Date(time).toISOString();
const auth = (key: string) => ({ authorization: `Bearer ${key}` });

/** The parts of a test app these tests use (also built by hand for the restart test). */
interface Api {
  ctx: ServiceContext;
  key: string;
  call: (options: InjectOptions) => Promise<LightMyRequestResponse>;
}

function expectStatus(res: LightMyRequestResponse, status: number, what: string): void {
  assert.equal(res.statusCode, status, `${what}: ${res.statusCode} ${res.body.slice(0, 400)}`);
}

function expectError(res: LightMyRequestResponse, status: number, code: string, what: string) {
  expectStatus(res, status, what);
  assert.equal((res.json() as { error: { code: string } }).error.code, code, what);
}

async function start(t: Api, body: Record<string, unknown>, key = t.key): Promise<Started> {
  const res = await t.call({
    method: 'POST',
    url: '/v1/sessions',
    headers: auth(key),
    payload: body,
  });
  expectStatus(res, 201, 'start');
  const timing = String(res.headers['server-timing']);
  assert.match(timing, /^app;dur=\d+\.\d{3}, preload;dur=\d+\.\d{3};desc="(index|built|store)"$/);
  return { ...(res.json() as Omit<Started, 'timing'>), timing };
}

async function append(t: Api, id: string, messages: Message[], key = t.key): Promise<Memory[]> {
  const res = await t.call({
    method: 'POST',
    url: `/v1/sessions/${id}/messages`,
    headers: auth(key),
    payload: { messages },
  });
  expectStatus(res, 201, 'append');
  return (res.json() as { items: Memory[] }).items;
}

async function view(t: Api, id: string, key = t.key): Promise<View> {
  const res = await t.call({ method: 'GET', url: `/v1/sessions/${id}`, headers: auth(key) });
  expectStatus(res, 200, 'get');
  return res.json() as View;
}

async function touch(t: Api, id: string): Promise<Session> {
  const res = await t.call({ method: 'POST', url: `/v1/sessions/${id}/touch` });
  expectStatus(res, 200, 'touch');
  return (res.json() as { session: Session }).session;
}

async function end(t: Api, id: string): Promise<{ session: Session; summary: Memory | null }> {
  const res = await t.call({ method: 'POST', url: `/v1/sessions/${id}/end` });
  expectStatus(res, 200, 'end');
  return res.json() as { session: Session; summary: Memory | null };
}

async function memories(t: Api, userId: string, query: string): Promise<Memory[]> {
  const res = await t.call({ method: 'GET', url: `/v1/users/${userId}/memories?${query}` });
  expectStatus(res, 200, `list ${query}`);
  return (res.json() as { items: Memory[] }).items;
}

async function search(
  t: Api,
  userId: string,
  body: Record<string, unknown>,
): Promise<{ items: Memory[]; timing: string }> {
  const res = await t.call({
    method: 'POST',
    url: `/v1/users/${userId}/memories/search`,
    payload: body,
  });
  expectStatus(res, 200, 'search');
  return {
    items: (res.json() as { items: { memory: Memory }[] }).items.map((i) => i.memory),
    timing: String(res.headers['server-timing']),
  };
}

async function remember(t: Api, body: Record<string, unknown>): Promise<Memory> {
  const res = await t.call({ method: 'POST', url: '/v1/memories', payload: body });
  expectStatus(res, 201, 'create memory');
  return res.json() as Memory;
}

/** Waits (real time) until `check` holds, or fails after `timeoutMs`. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 3000) {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Every message memory and summary of a session, and the summary's consistency with them. */
async function consolidated(t: Api, userId: string, sessionId: string) {
  const messages = await memories(t, userId, `sessionId=${sessionId}&kind=message&limit=500`);
  const summaries = await memories(t, userId, `sessionId=${sessionId}&kind=summary&limit=500`);
  assert.equal(summaries.length, 1, 'exactly one summary');
  const summary = summaries[0] as Memory;
  assert.equal(summary.sessionId, sessionId);
  assert.deepEqual(summary.tags, ['session-summary']);
  assert.equal(summary.metadata.sessionId, sessionId);
  assert.equal(summary.metadata.messages, messages.length, 'the summary counts every message');
  const excerpts = summary.metadata.excerpts as string[];
  const ids = new Set(messages.map((m) => m.id));
  assert.ok(excerpts.length >= 1 && excerpts.length <= 5, JSON.stringify(excerpts));
  for (const id of excerpts) assert.ok(ids.has(id), `excerpt ${id} is no message of the session`);
  assert.ok(
    summary.content.includes(`${messages.length} message${messages.length === 1 ? '' : 's'}`),
    summary.content,
  );
  return { messages, summary };
}

let users = 0;
/** A user id no other test (or earlier run on a shared server) uses. */
const freshUser = (prefix: string): string =>
  `${prefix}-${Date.now().toString(36)}-${(users++).toString(36)}`;

// ---------------------------------------------------------------------------------------------
// Every route (SQLite)
// ---------------------------------------------------------------------------------------------

describe('sessions API: routes (SQLite)', () => {
  let t: TestApp;
  let clock: FakeClock;
  before(async () => {
    clock = new FakeClock(Date.now());
    // Every cold start here is preloaded by store queries, however small the user (the
    // inline build for small users is tested with the defaults below).
    t = await testApp({ clock, env: { ENGRAM_SESSION_PRELOAD_BUILD_MAX: '0' } });
  });
  after(async () => {
    await t.close();
  });

  it('starts a session: active, the default 30-minute timeout, an empty bundle for a new user', async () => {
    const startedAt = clock.now();
    const s = await start(t, { userId: 'newbie', agentId: 'helper-1' });
    assert.match(s.session.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.equal(s.session.userId, 'newbie');
    assert.equal(s.session.agentId, 'helper-1');
    assert.equal(s.session.state, 'active');
    assert.equal(ms(s.session.createdAt), startedAt);
    assert.equal(ms(s.session.lastActivityAt), startedAt);
    assert.equal(s.session.timeout.ms, DEFAULT_TIMEOUT_MS);
    assert.equal(ms(s.session.expiresAt), startedAt + DEFAULT_TIMEOUT_MS);
    assert.equal(s.session.endedAt, null);
    assert.equal(s.session.messageCount, 0);
    assert.equal(s.session.summaryId, null);
    assert.deepEqual(s.session.timeout.basis, {
      source: 'default',
      withinGaps: 0,
      betweenGaps: 0,
      quantile: 0.95,
      quantileMs: null,
      margin: 1.5,
      clamped: null,
      betweenMedianMs: null,
    });
    assert.deepEqual(s.preload, {
      items: [],
      budgetChars: 4000,
      usedChars: 0,
      truncated: false,
      source: 'store',
    });
    // No agent: null.
    assert.equal((await start(t, { userId: 'newbie' })).session.agentId, null);
  });

  it('preloads pinned, important, relevant and recent memories, each once with all its reasons', async () => {
    const user = 'preload-user';
    const important = await remember(t, {
      userId: user,
      content: 'Ana is allergic to peanuts',
      importance: 1,
    });
    clock.advance(SECOND);
    const pinned = await remember(t, {
      userId: user,
      content: 'Call the vet on Monday',
      pinned: true,
      importance: 0.1,
    });
    clock.advance(SECOND);
    const relevant = await remember(t, {
      userId: user,
      content: 'Ana wants to visit Kyoto in Japan',
      importance: 0.1,
    });
    const fillers: Memory[] = [];
    for (let i = 0; i < 12; i++) {
      clock.advance(SECOND);
      fillers.push(await remember(t, { userId: user, content: `filler note number ${i}` }));
    }
    clock.advance(SECOND);
    const pinnedRecent = await remember(t, {
      userId: user,
      content: 'The wifi password is on the fridge',
      pinned: true,
      importance: 0.1,
    });

    const reasonsOf = (p: Preload): Map<string, string[]> => {
      const ids = p.items.map((i) => i.memory.id);
      assert.equal(new Set(ids).size, ids.length, 'a memory appears once');
      return new Map(p.items.map((i) => [i.memory.id, i.reasons]));
    };
    const check = (p: Preload) => {
      const reasons = reasonsOf(p);
      assert.deepEqual(reasons.get(important.id), ['important']);
      assert.deepEqual(reasons.get(pinned.id), ['pinned']);
      assert.deepEqual(reasons.get(relevant.id), ['relevant']);
      assert.deepEqual(reasons.get(pinnedRecent.id), ['pinned', 'recent']);
      // The 9 newest fillers are recent (the pinned one is the newest of all).
      for (const f of fillers.slice(3)) assert.ok(reasons.get(f.id)?.includes('recent'), f.content);
      for (const f of fillers.slice(0, 3)) {
        assert.ok(!reasons.get(f.id)?.includes('recent'), f.content);
      }
      for (const item of p.items) {
        for (const r of item.reasons) {
          assert.ok(['pinned', 'important', 'relevant', 'recent'].includes(r), r);
        }
      }
      // Priority order: pinned, then relevant, then important, then recent only.
      const rank = (r: string[]) =>
        r.includes('pinned') ? 0 : r.includes('relevant') ? 1 : r.includes('important') ? 2 : 3;
      const ranks = p.items.map((i) => rank(i.reasons));
      assert.deepEqual(
        ranks,
        [...ranks].sort((a, b) => a - b),
      );
      assert.equal(
        p.usedChars,
        p.items.map((i) => i.memory.content.length).reduce((a, b) => a + b),
      );
      assert.equal(p.truncated, false);
      assert.equal(p.budgetChars, 4000);
    };

    const counters = { ...t.ctx.indexes.counters };
    const cold = await start(t, { userId: user, context: 'planning a trip to Japan' });
    assert.equal(cold.preload.source, 'store');
    assert.match(cold.timing, /desc="store"$/);
    check(cold.preload);
    await until('the index warmed by the start', () => !!t.ctx.search.peekIndex('acme', user));
    // Counted as a build ahead of the session's first search.
    assert.equal(t.ctx.indexes.counters.warmBuilds, counters.warmBuilds + 1);
    assert.equal(t.ctx.indexes.counters.startBuilds, counters.startBuilds);
    assert.equal(t.ctx.indexes.counters.builds, counters.builds + 1);
    const warm = await start(t, { userId: user, context: 'planning a trip to Japan' });
    assert.equal(warm.preload.source, 'index');
    assert.match(warm.timing, /desc="index"$/);
    check(warm.preload);
    // The same memories whichever way the bundle was built.
    assert.deepEqual(
      [...reasonsOf(warm.preload).keys()].sort(),
      [...reasonsOf(cold.preload).keys()].sort(),
    );
    // Without a context nothing is relevant.
    const plain = await start(t, { userId: user });
    assert.ok(plain.preload.items.every((i) => !i.reasons.includes('relevant')));
    assert.ok(!plain.preload.items.some((i) => i.memory.id === relevant.id));
  });

  it('preloads the 20 newest live pinned memories, newest first, from the store and the index alike', async () => {
    const user = freshUser('pins');
    const pins: Memory[] = [];
    for (let i = 0; i < 23; i++) {
      clock.advance(SECOND);
      pins.push(await remember(t, { userId: user, content: `pinned note ${i}`, pinned: true }));
    }
    clock.advance(SECOND);
    // The newest, live while the index is built, expires before the second start.
    const expiring = await remember(t, {
      userId: user,
      content: 'pinned and soon expired',
      pinned: true,
      expiresAt: new Date(clock.now() + 10 * SECOND).toISOString(),
    });
    const pinnedIds = (p: Preload) =>
      p.items.filter((i) => i.reasons.includes('pinned')).map((i) => i.memory.id);
    const newest = (ms: Memory[]) =>
      ms
        .slice(-20)
        .reverse()
        .map((m) => m.id);
    const cold = await start(t, { userId: user, budget: { chars: 1_000_000 } });
    assert.equal(cold.preload.source, 'store');
    assert.deepEqual(pinnedIds(cold.preload), newest([...pins, expiring]));
    await until('the index warmed by the start', () => !!t.ctx.search.peekIndex('acme', user));
    clock.advance(20 * SECOND);
    const warm = await start(t, { userId: user, budget: { chars: 1_000_000 } });
    assert.equal(warm.preload.source, 'index');
    assert.deepEqual(pinnedIds(warm.preload), newest(pins));
  });

  it('cuts the bundle to its budget, in characters or tokens, in priority order', async () => {
    const user = 'preload-user';
    const full = (await start(t, { userId: user, budget: { chars: 1_000_000 } })).preload;
    assert.equal(full.source, 'index');
    assert.equal(full.truncated, false);
    const total = full.items.reduce((sum, i) => sum + i.memory.content.length, 0);
    assert.equal(full.usedChars, total);
    // What a greedy cut of the full bundle keeps.
    const greedy = (budget: number): string[] => {
      const kept: string[] = [];
      let used = 0;
      for (const item of full.items) {
        if (used + item.memory.content.length > budget) continue;
        used += item.memory.content.length;
        kept.push(item.memory.id);
      }
      return kept;
    };
    for (const budget of [0, 1, 25, 60, 100, total - 1, total]) {
      const p = (await start(t, { userId: user, budget: { chars: budget } })).preload;
      assert.equal(p.budgetChars, budget);
      assert.ok(p.usedChars <= budget, `${p.usedChars} > ${budget}`);
      assert.equal(
        p.usedChars,
        p.items.reduce((sum, i) => sum + i.memory.content.length, 0),
      );
      assert.equal(p.truncated, budget < total, `budget ${budget}`);
      assert.deepEqual(
        p.items.map((i) => i.memory.id),
        greedy(budget),
        `budget ${budget}`,
      );
    }
    // Tokens are 4 characters each; characters win when both are given.
    const tokens = (await start(t, { userId: user, budget: { tokens: 15 } })).preload;
    assert.equal(tokens.budgetChars, 60);
    assert.ok(tokens.usedChars <= 60);
    assert.equal(tokens.truncated, true);
    assert.deepEqual(
      tokens.items.map((i) => i.memory.id),
      greedy(60),
    );
    const both = (await start(t, { userId: user, budget: { chars: 30, tokens: 100 } })).preload;
    assert.equal(both.budgetChars, 30);
  });

  it('preloads the summary of the previous session once it ended', async () => {
    const user = freshUser('prev');
    await remember(t, { userId: user, content: 'Bo collects vintage cameras' });
    const first = await start(t, { userId: user });
    await append(t, first.session.id, [
      { role: 'user', content: 'I found a Leica M3 at the flea market' },
      { role: 'assistant', content: 'A Leica M3 is a great find' },
    ]);
    const ended = await end(t, first.session.id);
    assert.ok(ended.summary);
    clock.advance(HOUR);
    const second = await start(t, { userId: user, context: 'camera' });
    const item = second.preload.items.find((i) => i.memory.id === ended.summary?.id);
    assert.ok(item, JSON.stringify(second.preload.items));
    assert.equal(item.reasons[0], 'previous-summary');
    assert.equal(second.preload.items[0]?.memory.id, ended.summary.id, 'the summary comes first');
    assert.equal(
      second.preload.items.filter((i) => i.reasons.includes('previous-summary')).length,
      1,
    );
    // The gap since the first session was learned as a between-session gap.
    assert.ok(second.session.timeout.basis.betweenGaps > 0);
    assert.ok((second.session.timeout.basis.betweenMedianMs ?? 0) > 0);
  });

  it('appends messages as memories; GET shows them in order with the activity moved on', async () => {
    const user = freshUser('chat');
    const s = (await start(t, { userId: user, agentId: 'bot-7' })).session;
    clock.advance(10 * SECOND);
    const first = await append(t, s.id, [
      { role: 'user', content: 'Hello there' },
      { role: 'assistant', content: 'Hi! How can I help?' },
      { role: 'tool', content: '{"weather":"sunny"}' },
    ]);
    assert.equal(first.length, 3);
    for (const [i, m] of first.entries()) {
      assert.equal(m.sessionId, s.id);
      assert.equal(m.kind, 'message');
      assert.equal(m.userId, user);
      assert.equal(m.agentId, 'bot-7');
      assert.equal(m.metadata.role, ['user', 'assistant', 'tool'][i]);
      assert.equal(ms(m.createdAt), clock.now());
    }
    const firstIds = first.map((m) => m.id);
    assert.deepEqual(firstIds, [...firstIds].sort(), 'ids in message order');
    clock.advance(20 * SECOND);
    const second = await append(t, s.id, [
      { role: 'system', content: 'Be brief' },
      { role: 'user', content: 'What is the weather?' },
    ]);
    const v = await view(t, s.id);
    // Embedded mode keeps active sessions in this process: the window is the copy's.
    assert.equal(v.source, 'memory');
    assert.deepEqual(
      v.window.map((w) => [w.id, w.role, w.content, ms(w.at)]),
      [...first, ...second].map((m) => [m.id, m.metadata.role, m.content, ms(m.createdAt)]),
    );
    assert.equal(v.session.messageCount, 5);
    assert.equal(ms(v.session.lastActivityAt), clock.now());
    assert.equal(ms(v.session.expiresAt), clock.now() + v.session.timeout.ms);
    assert.equal(v.session.state, 'active');
    // The window holds the 20 newest messages.
    const many: Message[] = Array.from({ length: 30 }, (_, i) => ({
      role: 'user',
      content: `message ${i}`,
    }));
    clock.advance(SECOND);
    const rest = await append(t, s.id, many);
    const after30 = await view(t, s.id);
    assert.equal(after30.session.messageCount, 35);
    assert.deepEqual(
      after30.window.map((w) => w.id),
      rest.slice(-20).map((m) => m.id),
    );
  });

  it('touch moves the expiry; end writes a searchable summary; then 409s', async () => {
    const user = freshUser('lifecycle');
    const s = (await start(t, { userId: user })).session;
    await append(t, s.id, [
      { role: 'user', content: 'Remember that my sister Lina lives in Porto' },
    ]);
    clock.advance(5 * MINUTE);
    const touched = await touch(t, s.id);
    assert.equal(ms(touched.lastActivityAt), clock.now());
    assert.equal(ms(touched.expiresAt), clock.now() + touched.timeout.ms);
    assert.ok(ms(touched.expiresAt) > ms(s.expiresAt));
    assert.equal(touched.messageCount, 1);
    assert.equal(touched.state, 'active');

    clock.advance(MINUTE);
    const ended = await end(t, s.id);
    assert.equal(ended.session.state, 'ended');
    assert.equal(ms(ended.session.endedAt), clock.now());
    assert.ok(ended.summary);
    assert.equal(ended.summary.kind, 'summary');
    assert.equal(ended.summary.sessionId, s.id);
    assert.deepEqual(ended.summary.tags, ['session-summary']);
    assert.match(ended.summary.content, /Lina lives in Porto/);
    assert.equal(ended.session.summaryId, ended.summary.id);
    const { summary } = await consolidated(t, user, s.id);
    assert.equal(summary.id, ended.summary.id);
    const byId = await t.call({ method: 'GET', url: `/v1/memories/${summary.id}` });
    expectStatus(byId, 200, 'summary by id');
    const found = await search(t, user, { query: 'Porto', kind: 'summary' });
    assert.deepEqual(
      found.items.map((m) => m.id),
      [summary.id],
    );
    // GET still shows it, ended.
    const v = await view(t, s.id);
    assert.equal(v.session.state, 'ended');
    assert.equal(v.session.summaryId, summary.id);
    assert.equal(v.window.length, 1);

    const before = await memories(t, user, 'limit=500');
    for (const [what, url, payload] of [
      ['messages', `/v1/sessions/${s.id}/messages`, { messages: [{ role: 'user', content: 'x' }] }],
      ['touch', `/v1/sessions/${s.id}/touch`, undefined],
      ['end', `/v1/sessions/${s.id}/end`, undefined],
    ] as const) {
      const res = await t.call({ method: 'POST', url, ...(payload ? { payload } : {}) });
      expectError(res, 409, 'ENGRAM_SESSION_ENDED', `${what} after end`);
    }
    assert.deepEqual(await memories(t, user, 'limit=500'), before, 'nothing written after end');
    assert.equal((await view(t, s.id)).session.messageCount, 1);
  });

  it('a session without messages ends without a summary', async () => {
    const s = (await start(t, { userId: freshUser('silent') })).session;
    const ended = await end(t, s.id);
    assert.equal(ended.summary, null);
    assert.equal(ended.session.summaryId, null);
    assert.equal(ended.session.state, 'ended');
  });

  it('appending or touching past the expiry expires the session on the spot (409)', async () => {
    const user = freshUser('late');
    for (const route of ['messages', 'touch'] as const) {
      const s = (await start(t, { userId: user })).session;
      await append(t, s.id, [{ role: 'user', content: `said before the timeout (${route})` }]);
      clock.advance(DEFAULT_TIMEOUT_MS + SECOND);
      const before = await memories(t, user, 'kind=message&limit=500');
      const res = await t.call({
        method: 'POST',
        url: `/v1/sessions/${s.id}/${route}`,
        ...(route === 'messages'
          ? { payload: { messages: [{ role: 'user', content: 'too late' }] } }
          : {}),
      });
      expectError(res, 409, 'ENGRAM_SESSION_ENDED', `${route} past expiry`);
      assert.deepEqual(await memories(t, user, 'kind=message&limit=500'), before);
      const v = await view(t, s.id);
      assert.equal(v.session.state, 'expired');
      assert.equal(v.session.endedAt, v.session.expiresAt);
      assert.ok(v.session.summaryId);
      await consolidated(t, user, s.id);
    }
  });

  it('erasing a user leaves nothing of theirs written back: sessions, activity, timeout model', async () => {
    const user = 'erased-user';
    const s = (await start(t, { userId: user })).session;
    clock.advance(5 * SECOND);
    await append(t, s.id, [{ role: 'user', content: 'remember the blue door' }]);
    // Searches answered from the user's index: from the second answer on, its rows are held.
    for (let i = 0; i < 2; i++) {
      const found = await search(t, user, { query: 'blue door' });
      assert.equal(found.items[0]?.content, 'remember the blue door');
    }
    assert.ok(answeredRows.heldOf('acme', user) > 0, 'rows held after the search');
    // The model and the activity are still in the write-behind buffers (not flushed).
    const erased = await t.call({ method: 'DELETE', url: `/v1/users/${user}` });
    expectStatus(erased, 200, 'erase');
    await Promise.all([t.ctx.activity.flush(), t.ctx.timeoutModels.flush()]);
    assert.equal(await t.ctx.store.getSession('acme', s.id), null);
    assert.equal(await t.ctx.store.getTimeoutModel('acme', user), null);
    const active = await t.ctx.store.recentlyActiveUsers(0, 10_000);
    assert.ok(
      !active.some((a) => a.tenant === 'acme' && a.userId === user),
      'activity written back',
    );
    const got = await t.call({ method: 'GET', url: `/v1/sessions/${s.id}` });
    expectError(got, 404, 'ENGRAM_SESSION_NOT_FOUND', 'an erased session');
    // Nor are their memories' rows kept in memory for answers.
    assert.equal(answeredRows.heldOf('acme', user), 0, 'rows of an erased user held');
  });

  it('404 ENGRAM_SESSION_NOT_FOUND for unknown ids and for another tenant', async () => {
    const s = (await start(t, { userId: 'secretive' })).session;
    await append(t, s.id, [{ role: 'user', content: 'my secret plan' }]);
    const routes = (id: string): InjectOptions[] => [
      { method: 'GET', url: `/v1/sessions/${id}` },
      {
        method: 'POST',
        url: `/v1/sessions/${id}/messages`,
        payload: { messages: [{ role: 'user', content: 'intrusion' }] },
      },
      { method: 'POST', url: `/v1/sessions/${id}/touch` },
      { method: 'POST', url: `/v1/sessions/${id}/end` },
    ];
    for (const options of routes(UNKNOWN_ID)) {
      expectError(await t.call(options), 404, 'ENGRAM_SESSION_NOT_FOUND', `${options.url}`);
    }
    for (const options of routes(s.id)) {
      const res = await t.call({ ...options, headers: auth(t.otherKey) });
      expectError(res, 404, 'ENGRAM_SESSION_NOT_FOUND', `other tenant ${options.url}`);
      assert.ok(!res.body.includes('secret'), res.body);
    }
    const listed = await t.call({
      method: 'GET',
      url: '/v1/users/secretive/sessions',
      headers: auth(t.otherKey),
    });
    expectStatus(listed, 200, 'list as other');
    assert.deepEqual(listed.json(), { items: [], nextCursor: null });
    // Unchanged for its own tenant.
    const v = await view(t, s.id);
    assert.equal(v.session.state, 'active');
    assert.equal(v.session.messageCount, 1);
    assert.deepEqual(
      v.window.map((w) => w.content),
      ['my secret plan'],
    );
  });

  it("lists a user's sessions newest first, with cursor paging", async () => {
    const user = freshUser('lister');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await start(t, { userId: user })).session.id);
      if (i % 2 === 0) clock.advance(SECOND);
    }
    await end(t, ids[1] as string);
    const seen: Session[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const url: string = `/v1/users/${user}/sessions?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await t.call({ method: 'GET', url });
      expectStatus(res, 200, url);
      const page = res.json() as { items: Session[]; nextCursor: string | null };
      assert.ok(page.items.length <= 2);
      seen.push(...page.items);
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== null && pages < 10);
    assert.equal(pages, 3);
    assert.deepEqual(
      seen.map((s) => s.id),
      [...ids].reverse(),
    );
    assert.ok(seen.every((s) => s.userId === user));
    assert.equal(seen.find((s) => s.id === ids[1])?.state, 'ended');
    const all = await t.call({ method: 'GET', url: `/v1/users/${user}/sessions` });
    assert.deepEqual(
      (all.json() as { items: Session[] }).items.map((s) => s.id),
      [...ids].reverse(),
    );
    assert.equal((all.json() as { nextCursor: string | null }).nextCursor, null);
    const none = await t.call({ method: 'GET', url: `/v1/users/${freshUser('nobody')}/sessions` });
    assert.deepEqual(none.json(), { items: [], nextCursor: null });
  });
});

// ---------------------------------------------------------------------------------------------
// Read-your-writes through the index
// ---------------------------------------------------------------------------------------------

describe('sessions API: read-your-writes through the search index (SQLite)', () => {
  let t: TestApp;
  before(async () => {
    t = await testApp();
  });
  after(async () => {
    await t.close();
  });

  it('a small cold user gets their index built for the start; the first search hits it', async () => {
    const user = freshUser('cold');
    await remember(t, { userId: user, content: 'Cy plays the bassoon in an orchestra' });
    assert.equal(t.ctx.search.peekIndex('acme', user), undefined);
    const counters = { ...t.ctx.indexes.counters };
    const s = await start(t, { userId: user, context: 'music orchestra' });
    assert.equal(s.preload.source, 'built');
    // Counted as a session start's build.
    assert.equal(t.ctx.indexes.counters.startBuilds, counters.startBuilds + 1);
    assert.equal(t.ctx.indexes.counters.warmBuilds, counters.warmBuilds);
    assert.equal(t.ctx.indexes.counters.builds, counters.builds + 1);
    assert.match(s.timing, /desc="built"$/);
    assert.deepEqual(
      s.preload.items.map((i) => i.memory.content),
      ['Cy plays the bassoon in an orchestra'],
    );
    // Held as soon as the start has answered: no background build to wait for.
    assert.ok(t.ctx.search.peekIndex('acme', user));
    const found = await search(t, user, { query: 'bassoon' });
    assert.match(found.timing, /index;desc="hit"/);
    assert.equal(found.items[0]?.content, 'Cy plays the bassoon in an orchestra');
  });

  it('a message appended is found by the next search, from the held index', async () => {
    const user = freshUser('ryw');
    await remember(t, { userId: user, content: 'Dee runs marathons' });
    const warmUp = await search(t, user, { query: 'marathons' });
    assert.match(warmUp.timing, /index;desc="(built|hit)"/);
    const s = await start(t, { userId: user });
    assert.equal(s.preload.source, 'index');
    assert.match(s.timing, /preload;dur=\d+\.\d{3};desc="index"$/);
    for (let i = 0; i < 5; i++) {
      const word = `zebracorn${i}x`;
      const [m] = await append(t, s.session.id, [
        { role: 'user', content: `my new pet is a ${word}` },
      ]);
      const found = await search(t, user, { query: word });
      assert.match(found.timing, /index;desc="hit"/);
      assert.equal(found.items[0]?.id, m?.id);
      assert.equal(found.items[0]?.sessionId, s.session.id);
    }
    // And the summary, once the session ends.
    const { summary } = await end(t, s.session.id);
    const found = await search(t, user, { query: 'pet', kind: 'summary' });
    assert.match(found.timing, /index;desc="hit"/);
    assert.equal(found.items[0]?.id, summary?.id);
  });
});

// ---------------------------------------------------------------------------------------------
// Consolidation
// ---------------------------------------------------------------------------------------------

describe('sessions API: consolidation counts every message (SQLite)', () => {
  let t: TestApp;
  let clock: FakeClock;
  before(async () => {
    clock = new FakeClock(Date.now());
    t = await testApp({ clock });
  });
  after(async () => {
    await t.close();
  });

  /** 57 messages in 5 requests, some with explicit past times; returns their ids. */
  async function chat(id: string, startedAt: number): Promise<string[]> {
    const ids: string[] = [];
    const sizes = [10, 20, 7, 15, 5];
    let n = 0;
    for (const [r, size] of sizes.entries()) {
      clock.advance(MINUTE);
      const messages: Message[] = Array.from({ length: size }, (_, i) => {
        const k = n + i;
        const m: Message = {
          role: k % 2 ? 'assistant' : 'user',
          content: `message ${k} about topic ${['apples', 'rivers', 'guitars', 'tennis', 'trains'][r]} and ${k % 7 === 0 ? 'a rare platypus' : 'ordinary things'}`,
        };
        // Requests 1 and 3 say when each message was said: between the start and now.
        if (r === 1 || r === 3) m.at = iso(startedAt + 1000 * (k + 1));
        return m;
      });
      n += size;
      const items = await append(t, id, messages);
      assert.equal(items.length, size);
      ids.push(...items.map((m) => m.id));
    }
    assert.equal(ids.length, 57);
    return ids;
  }

  it('an ended session: 57 message memories and one summary of 57 messages', async () => {
    const user = freshUser('consolidate');
    const s = (await start(t, { userId: user })).session;
    const ids = await chat(s.id, ms(s.createdAt));
    const ended = await end(t, s.id);
    assert.equal(ended.session.messageCount, 57);
    const { messages, summary } = await consolidated(t, user, s.id);
    assert.equal(messages.length, 57);
    assert.deepEqual(new Set(messages.map((m) => m.id)), new Set(ids));
    assert.equal(summary.id, ended.summary?.id);
    assert.equal((summary.metadata.excerpts as string[]).length, 5);
    // Explicit times are kept: the 35 messages said within the first minute.
    const startedAt = ms(s.createdAt);
    assert.equal(messages.filter((m) => ms(m.createdAt) < startedAt + MINUTE).length, 35);
  });

  it('an expired session: the sweeper ends it at its expiry with the same consolidation', async () => {
    const user = freshUser('expire');
    const s = (await start(t, { userId: user })).session;
    const ids = await chat(s.id, ms(s.createdAt));
    const due = (await view(t, s.id)).session;
    assert.equal(due.messageCount, 57);
    clock.advance(due.timeout.ms - SECOND);
    await t.ctx.sweeper.sweep();
    assert.equal((await view(t, s.id)).session.state, 'active', 'not yet due');
    clock.advance(2 * SECOND);
    assert.ok((await t.ctx.sweeper.sweep()) >= 1);
    const v = await view(t, s.id);
    assert.equal(v.session.state, 'expired');
    assert.equal(v.session.endedAt, due.expiresAt);
    assert.equal(v.session.messageCount, 57);
    const { messages, summary } = await consolidated(t, user, s.id);
    assert.deepEqual(new Set(messages.map((m) => m.id)), new Set(ids));
    assert.equal(v.session.summaryId, summary.id);
    // A second sweep ends nothing more.
    assert.equal(await t.ctx.sweeper.sweep(), 0);
    await consolidated(t, user, s.id);
  });

  it('an append racing an end is either counted by the summary or refused without a trace', async () => {
    const problems: string[] = [];
    // The end starts 0..15 turns of the event loop after the append: every interleaving.
    for (let delay = 0; delay < 16; delay++) {
      const user = freshUser('race');
      const s = (await start(t, { userId: user })).session;
      await append(t, s.id, [{ role: 'user', content: 'first words' }]);
      const [appended, ended] = await Promise.all([
        t.call({
          method: 'POST',
          url: `/v1/sessions/${s.id}/messages`,
          payload: {
            messages: [
              { role: 'user', content: 'racing one' },
              { role: 'user', content: 'racing two' },
            ],
          },
        }),
        (async () => {
          for (let i = 0; i < delay; i++) await tick();
          return t.call({ method: 'POST', url: `/v1/sessions/${s.id}/end` });
        })(),
      ]);
      expectStatus(ended, 200, 'end');
      assert.ok([201, 409].includes(appended.statusCode), appended.body);
      const messages = await memories(t, user, `sessionId=${s.id}&kind=message&limit=500`);
      const summary = (ended.json() as { summary: Memory }).summary;
      const session = (await view(t, s.id)).session;
      const expected = appended.statusCode === 201 ? 3 : 1;
      const counts = [messages.length, summary.metadata.messages, session.messageCount];
      if (counts.some((n) => n !== expected)) {
        problems.push(
          `end ${delay} turns later: append ${appended.statusCode}, stored ${counts[0]}, summary ${counts[1]}, messageCount ${counts[2]}`,
        );
      }
    }
    assert.deepEqual(problems, []);
  });
});

// ---------------------------------------------------------------------------------------------
// Adaptive timeout
// ---------------------------------------------------------------------------------------------

describe('sessions API: the adaptive idle timeout (SQLite, FakeClock)', () => {
  let t: TestApp;
  let clock: FakeClock;
  before(async () => {
    clock = new FakeClock(Date.now());
    t = await testApp({ clock });
  });
  after(async () => {
    await t.close();
  });

  /** Three sessions of `messages` messages each, `gap()` apart, an hour between sessions. */
  async function habits(user: string, gap: () => number, onGap?: (n: number, v: View) => void) {
    let gaps = 0;
    for (let session = 0; session < 3; session++) {
      const s = (await start(t, { userId: user })).session;
      for (let i = 0; i < 8; i++) {
        clock.advance(gap());
        await append(t, s.id, [{ role: 'user', content: `message ${i} of session ${session}` }]);
        gaps++;
        onGap?.(gaps, await view(t, s.id));
      }
      await end(t, s.id);
      clock.advance(HOUR);
    }
    return (await start(t, { userId: user })).session;
  }

  const consistent = (b: Basis, timeoutMs: number) => {
    assert.equal(b.source, 'learned');
    assert.equal(b.quantile, 0.95);
    assert.equal(b.margin, 1.5);
    assert.ok(b.quantileMs !== null && b.quantileMs > 0);
    assert.ok(b.withinGaps >= 5, String(b.withinGaps));
    assert.ok(b.betweenGaps > 0, String(b.betweenGaps));
    // Every gap between sessions was an hour (within a bin of the sketch: ±19%).
    assert.ok(b.betweenMedianMs !== null && Math.abs(b.betweenMedianMs - HOUR) < 0.2 * HOUR);
    if (b.clamped === 'min') assert.equal(timeoutMs, MIN_TIMEOUT_MS);
    else {
      assert.equal(b.clamped, null);
      assert.ok(Math.abs(timeoutMs - b.quantileMs * b.margin) <= 2, `${timeoutMs} vs basis`);
    }
  };

  it('learns a short timeout, clamped to the minimum, for a user who writes every ~20 s', async () => {
    let k = 0;
    const s = await habits(
      freshUser('fast'),
      () => 18 * SECOND + ((k++ * 7) % 5) * SECOND,
      (n, v) => {
        const b = v.session.timeout.basis;
        // Decayed count of n gaps (DECAY 0.98), shown rounded down to 2 decimals.
        const count = (1 - 0.98 ** n) / 0.02;
        assert.ok(Math.abs(b.withinGaps - Math.floor(count * 100) / 100) < 0.011, `${n} gaps`);
        // Five gaps count 4.80: the sixth makes the timeout learned.
        assert.equal(b.source, n < 6 ? 'default' : 'learned', `${n} gaps`);
        assert.equal(v.session.timeout.ms, n < 6 ? DEFAULT_TIMEOUT_MS : MIN_TIMEOUT_MS);
        assert.equal(ms(v.session.expiresAt) - ms(v.session.lastActivityAt), v.session.timeout.ms);
      },
    );
    assert.equal(s.timeout.ms, MIN_TIMEOUT_MS);
    assert.equal(s.timeout.basis.clamped, 'min');
    assert.ok(s.timeout.ms < DEFAULT_TIMEOUT_MS / 10);
    const q = s.timeout.basis.quantileMs ?? 0;
    assert.ok(q >= 15 * SECOND && q <= 25 * SECOND, `quantile ${q}`);
    consistent(s.timeout.basis, s.timeout.ms);
    assert.equal(ms(s.expiresAt), ms(s.createdAt) + MIN_TIMEOUT_MS);
  });

  it('learns a longer timeout for a user with ~8-minute gaps', async () => {
    let k = 0;
    const fast = await habits(freshUser('fast2'), () => 20 * SECOND);
    const slow = await habits(
      freshUser('slow'),
      () => 7.5 * MINUTE + ((k++ * 3) % 4) * 20 * SECOND,
    );
    consistent(slow.timeout.basis, slow.timeout.ms);
    assert.equal(slow.timeout.basis.clamped, null);
    const q = slow.timeout.basis.quantileMs ?? 0;
    assert.ok(q >= 6 * MINUTE && q <= 11 * MINUTE, `quantile ${q}`);
    assert.ok(slow.timeout.ms > 3 * fast.timeout.ms, `${slow.timeout.ms} vs ${fast.timeout.ms}`);
    assert.ok(slow.timeout.ms < DEFAULT_TIMEOUT_MS);
    // GET shows the same timeout and basis.
    const v = await view(t, slow.id);
    assert.deepEqual(v.session.timeout, slow.timeout);
  });
});

// ---------------------------------------------------------------------------------------------
// Expiry across a restart
// ---------------------------------------------------------------------------------------------

/** An app over SQLite in `dir` (kept between opens), as testApp builds one. */
async function openIn(dir: string, clock: FakeClock, key?: string) {
  const config = loadConfig({ ENGRAM_DATA_DIR: dir, ENGRAM_LOG_LEVEL: 'silent' });
  const ctx = await createContext(config, pino({ level: 'silent' }), { clock });
  const app: FastifyInstance = await buildApp(ctx);
  await app.ready();
  const k = key ?? (await ctx.keys.create('acme')).key;
  const api: Api = {
    ctx,
    key: k,
    call: (o) =>
      app.inject({
        ...o,
        headers: { authorization: `Bearer ${k}`, ...o.headers },
      } as InjectOptions),
  };
  return {
    ...api,
    close: async () => {
      await app.close();
      await ctx.close();
    },
  };
}

describe('sessions API: expiry across a restart (SQLite)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'engram-sessions-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('after a restart a session is read from the store, and its next append seeds the copy with the stored window', async () => {
    const clock = new FakeClock(Date.now());
    const first = await openIn(dir, clock);
    const user = freshUser('reopen');
    const { id } = (await start(first, { userId: user })).session;
    clock.advance(10 * SECOND);
    const before = await append(first, id, [
      { role: 'user', content: 'kept across the restart' },
      { role: 'assistant', content: 'noted' },
    ]);
    assert.equal((await view(first, id)).source, 'memory');
    await first.close();
    const second = await openIn(dir, clock, first.key);
    try {
      const stored = await view(second, id);
      assert.equal(stored.source, 'store');
      assert.deepEqual(
        stored.window.map((w) => w.id),
        before.map((m) => m.id),
      );
      clock.advance(10 * SECOND);
      const after = await append(second, id, [{ role: 'user', content: 'and one more' }]);
      const hot = await view(second, id);
      assert.equal(hot.source, 'memory');
      assert.deepEqual(
        hot.window.map((w) => w.id),
        [...before, ...after].map((m) => m.id),
      );
      assert.equal(hot.session.messageCount, 3);
      // Ended: the expiry tests below read the data directory's next expiry.
      assert.equal((await end(second, id)).session.state, 'ended');
      assert.equal((await view(second, id)).source, 'store');
    } finally {
      await second.close();
    }
  });

  for (const how of ['sweep()', 'the sweeper started by the new instance'] as const) {
    it(`a session left active is expired after a restart by ${how}, every message kept`, async () => {
      const clock = new FakeClock(Date.now());
      const first = await openIn(dir, clock);
      const user = freshUser('restart');
      const said: string[] = [];
      const { id } = (await start(first, { userId: user })).session;
      for (let i = 0; i < 4; i++) {
        clock.advance(30 * SECOND);
        const items = await append(first, id, [
          { role: 'user', content: `before the restart ${i}` },
          { role: 'assistant', content: `noted ${i}` },
        ]);
        said.push(...items.map((m) => m.id));
      }
      const s = (await view(first, id)).session;
      await first.close();
      clock.advance(s.timeout.ms + MINUTE);
      const second = await openIn(dir, clock, first.key);
      try {
        assert.equal(await second.ctx.store.nextSessionExpiry(), ms(s.expiresAt));
        if (how === 'sweep()') {
          assert.equal(await second.ctx.sweeper.sweep(), 1);
        } else {
          await second.ctx.sweeper.start();
          await until(
            'the sweeper to expire the session',
            async () => (await second.ctx.store.getSession('acme', s.id))?.state === 'expired',
          );
        }
        const v = await view(second, s.id);
        assert.equal(v.session.state, 'expired');
        assert.equal(v.session.endedAt, s.expiresAt);
        assert.equal(v.session.messageCount, 8);
        const { messages } = await consolidated(second, user, s.id);
        assert.deepEqual(new Set(messages.map((m) => m.id)), new Set(said));
        assert.equal(await second.ctx.store.nextSessionExpiry(), null);
      } finally {
        await second.close();
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Two instances on PostgreSQL and Redis
// ---------------------------------------------------------------------------------------------

function pgStore(url: string): PostgresStore {
  return new PostgresStore({ url, poolMax: 4, connectTimeoutMs: 2000, statementTimeoutMs: 5000 });
}

const pg = await needs('postgres');
const redis = await needs('redis');
describe('sessions API: two instances sharing PostgreSQL and Redis', {
  skip: pg.skip || redis.skip,
}, () => {
  let schema: { url: string; drop: () => Promise<void> };
  let a: TestApp;
  let b: TestApp;
  let clockA: FakeClock;
  let clockB: FakeClock;
  before(async () => {
    schema = await pgSchema();
    const now = Date.now();
    clockA = new FakeClock(now);
    clockB = new FakeClock(now);
    const env = { REDIS_URL };
    a = await testApp({ store: pgStore(schema.url), clock: clockA, env });
    b = await testApp({ store: pgStore(schema.url), clock: clockB, env });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await schema?.drop();
  });
  const advance = (delta: number) => {
    clockA.advance(delta);
    clockB.advance(delta);
  };

  it('a session started on A takes messages on B; A reads them from Redis', async () => {
    const user = freshUser('shared');
    const s = (await start(a, { userId: user })).session;
    advance(5 * SECOND);
    const items = await append(b, s.id, [
      { role: 'user', content: 'sent through instance B' },
      { role: 'assistant', content: 'answered by instance B' },
    ]);
    const onA = await view(a, s.id);
    assert.equal(onA.source, 'redis');
    assert.deepEqual(
      onA.window.map((w) => w.id),
      items.map((m) => m.id),
    );
    assert.equal(onA.session.messageCount, 2);
    assert.equal(ms(onA.session.lastActivityAt), clockA.now());
    advance(5 * SECOND);
    const touched = await touch(a, s.id);
    assert.equal(ms(touched.lastActivityAt), clockA.now());
    const onB = await view(b, s.id);
    assert.equal(onB.source, 'redis');
    assert.equal(onB.session.expiresAt, touched.expiresAt);
    // Ended on B: A reads the store's ended copy.
    const ended = await end(b, s.id);
    const after = await view(a, s.id);
    assert.equal(after.source, 'store');
    assert.equal(after.session.state, 'ended');
    assert.equal(after.session.summaryId, ended.summary?.id);
    assert.deepEqual(
      after.window.map((w) => w.id),
      items.map((m) => m.id),
    );
  });

  it("erasing a user on A removes their sessions' hot copies: B no longer serves them", async () => {
    const user = freshUser('erased');
    const s = (await start(a, { userId: user })).session;
    await append(b, s.id, [{ role: 'user', content: 'my secret is the blue door' }]);
    assert.equal((await view(b, s.id)).source, 'redis');
    const erased = await a.call({ method: 'DELETE', url: `/v1/users/${user}` });
    expectStatus(erased, 200, 'erase');
    // A copy put late, as a start that raced the erasure on another instance would (its session
    // stored after the listing of the user's sessions, then erased): refused while the user is
    // marked, though no tombstone names it.
    const lateId = newMemoryId(Date.now(), Date.now());
    const redis = new Redis(REDIS_URL);
    const late = new SessionHotState(redis, 20, 1000);
    const now = Date.now();
    const row: SessionRow = {
      tenant: 'acme',
      id: lateId,
      userId: user,
      agentId: null,
      state: 'active',
      createdAt: now,
      lastActivityAt: now + 1000,
      expiresAt: now + 60_000,
      endedAt: null,
      timeoutMs: 60_000,
      timeoutBasis: s.timeout.basis,
      messageCount: 5,
      summaryId: null,
    };
    try {
      await late.put(row, now);
      await late.pushWindow(
        row,
        [{ id: 'late', role: 'user', content: 'late words', at: now }],
        now,
      );
      const window = await redis.exists(`engram:session:acme/${lateId}:w`);
      assert.equal(window, 0, 'a window written back');
    } finally {
      late.close();
    }
    const lateGet = await b.call({
      method: 'GET',
      url: `/v1/sessions/${lateId}`,
      headers: auth(b.key),
    });
    expectError(lateGet, 404, 'ENGRAM_SESSION_NOT_FOUND', 'a late copy of an erased session');
    for (const t of [a, b]) {
      const got = await t.call({
        method: 'GET',
        url: `/v1/sessions/${s.id}`,
        headers: auth(t.key),
      });
      expectError(got, 404, 'ENGRAM_SESSION_NOT_FOUND', 'an erased session');
      const res = await t.call({
        method: 'POST',
        url: `/v1/sessions/${s.id}/messages`,
        headers: auth(t.key),
        payload: { messages: [{ role: 'user', content: 'still there?' }] },
      });
      expectError(res, 404, 'ENGRAM_SESSION_NOT_FOUND', 'an append to an erased session');
    }
  });

  it('both sweepers sweeping the same due sessions end each exactly once', async () => {
    const sessions: { user: string; id: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const user = freshUser(`swept${i}`);
      const owner = i % 2 ? a : b;
      const s = (await start(owner, { userId: user })).session;
      await append(i % 3 ? a : b, s.id, [{ role: 'user', content: `words of user ${i}` }]);
      sessions.push({ user, id: s.id });
    }
    advance(DEFAULT_TIMEOUT_MS + MINUTE);
    const [endedByA, endedByB] = await Promise.all([a.ctx.sweeper.sweep(), b.ctx.sweeper.sweep()]);
    assert.equal(endedByA + endedByB, sessions.length, `A ${endedByA}, B ${endedByB}`);
    for (const { user, id } of sessions) {
      const v = await view(a, id);
      assert.equal(v.source, 'store');
      assert.equal(v.session.state, 'expired');
      const { summary } = await consolidated(a, user, id);
      assert.equal(v.session.summaryId, summary.id);
    }
    assert.deepEqual(await Promise.all([a.ctx.sweeper.sweep(), b.ctx.sweeper.sweep()]), [0, 0]);
  });

  it('concurrent appends on both instances: every message is in the window read from Redis', async () => {
    const user = freshUser('concurrent');
    const s = (await start(a, { userId: user })).session;
    const sent = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        append(i % 2 ? a : b, s.id, [{ role: 'user', content: `concurrent message ${i}` }]),
      ),
    );
    const ids = sent.flat().map((m) => m.id);
    const stored = await memories(a, user, `sessionId=${s.id}&kind=message&limit=500`);
    assert.equal(stored.length, 8, 'all stored');
    const v = await view(a, s.id);
    assert.equal(v.source, 'redis');
    assert.equal(v.session.messageCount, 8);
    assert.deepEqual(v.window.map((w) => w.id).sort(), [...ids].sort());
  });
});

// ---------------------------------------------------------------------------------------------
// Redis down
// ---------------------------------------------------------------------------------------------

describe('sessions API: Redis down (nothing listening on its port)', () => {
  const REDIS_TIMEOUT_MS = 100;
  /** Slack for a loaded machine: a request does a few Redis calls, each failing fast. */
  const BOUND_MS = 1500;
  let t: TestApp;
  before(async () => {
    const port = await freePort();
    t = await testApp({
      env: {
        REDIS_URL: `redis://127.0.0.1:${port}`,
        ENGRAM_REDIS_TIMEOUT_MS: String(REDIS_TIMEOUT_MS),
      },
    });
  });
  after(async () => {
    await t.close();
  });

  it('every session route still works, from the store, without waiting on Redis', async () => {
    const user = freshUser('noredis');
    const timed = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
      const started = performance.now();
      const result = await run();
      const took = performance.now() - started;
      assert.ok(took < BOUND_MS, `${what} took ${took.toFixed(0)} ms`);
      return result;
    };
    await remember(t, { userId: user, content: 'Eve keeps bees', pinned: true });
    const s = await timed('start', () => start(t, { userId: user, context: 'bees' }));
    assert.equal(s.session.state, 'active');
    assert.ok(s.preload.items.some((i) => i.memory.content === 'Eve keeps bees'));
    const items = await timed('append', () =>
      append(t, s.session.id, [
        { role: 'user', content: 'the hive swarmed today' },
        { role: 'assistant', content: 'did you catch the swarm?' },
      ]),
    );
    const v = await timed('get', () => view(t, s.session.id));
    assert.equal(v.source, 'store');
    assert.deepEqual(
      v.window.map((w) => w.id),
      items.map((m) => m.id),
    );
    assert.equal(v.session.messageCount, 2);
    const touched = await timed('touch', () => touch(t, s.session.id));
    assert.equal(touched.state, 'active');
    const ended = await timed('end', () => end(t, s.session.id));
    assert.equal(ended.session.state, 'ended');
    assert.ok(ended.summary);
    const listed = await timed('list', () =>
      t.call({ method: 'GET', url: `/v1/users/${user}/sessions` }),
    );
    expectStatus(listed, 200, 'list');
    assert.deepEqual(
      (listed.json() as { items: Session[] }).items.map((x) => [x.id, x.state]),
      [[s.session.id, 'ended']],
    );
    await consolidated(t, user, s.session.id);
  });
});

describe('sessions: a preload that fails while the session insert waits', () => {
  it('answers the start with an error and leaves no unhandled rejection', async () => {
    const { store, dispose } = await openSqlite();
    // Reads fail at once; the insert takes a while (as when its flush to disk is slow).
    const failing = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'countLiveMemories' || prop === 'listMemories') {
          return () => Promise.reject(new Error('read failed'));
        }
        if (prop === 'insertSession') {
          return async (...args: Parameters<typeof store.insertSession>) => {
            await sleep(50);
            return target.insertSession(...args);
          };
        }
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const t = await testApp({ store: failing });
    try {
      const res = await t.call({
        method: 'POST',
        url: '/v1/sessions',
        payload: { userId: 'ann', context: 'kayak' },
      });
      assert.equal(res.statusCode, 500, res.body);
      await sleep(20);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await t.close();
      await dispose();
    }
  });
});
