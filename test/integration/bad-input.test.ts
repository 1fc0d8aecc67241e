/**
 * ARCHITECTURE §8: bad input that every route must survive. Every route of the API is listed
 * in one table and each class of bad input that applies to it is sent; each answer must be the
 * exact 4xx with its stable catalog code, a request id equal to the `x-request-id` header, and
 * the store must hold exactly what it held before (nothing half-written).
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { ErrorCatalog, type ErrorCode } from '../../src/errors.ts';
import { type TestApp, testApp } from '../helpers/app.ts';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

type Res = LightMyRequestResponse;
type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

interface ErrorJson {
  error: {
    code: string;
    message: string;
    requestId: string;
    details?: { path: string; message: string }[];
    items?: { index: number; errors: { path: string; message: string }[] }[];
    [extra: string]: unknown;
  };
}

const JSON_TYPE = { 'content-type': 'application/json' };

function describeRes(res: Res): string {
  return `${res.statusCode} ${res.body.slice(0, 400)}`;
}

/** Asserts the exact status and catalog code, and that the request id is in body and header. */
function assertError(res: Res, status: number, code: ErrorCode, what = ''): ErrorJson {
  const where = `${what}: got ${describeRes(res)}`;
  assert.ok(res.statusCode < 500, `5xx ${where}`);
  assert.equal(res.statusCode, status, where);
  assert.equal(ErrorCatalog[code].status, status, `the test expects ${code} with ${status}`);
  assert.match(String(res.headers['content-type']), /^application\/json/, where);
  const body = res.json() as ErrorJson;
  assert.equal(body.error.code, code, where);
  assert.equal(typeof body.error.message, 'string', where);
  assert.equal(typeof body.error.requestId, 'string', where);
  assert.ok(body.error.requestId.length > 0, where);
  assert.equal(res.headers['x-request-id'], body.error.requestId, where);
  return body;
}

/** Asserts a 4xx whose code is in the catalog with that very status. */
function assertCatalog4xx(res: Res, what = ''): ErrorJson {
  const where = `${what}: got ${describeRes(res)}`;
  assert.ok(res.statusCode >= 400 && res.statusCode < 500, where);
  const body = res.json() as ErrorJson;
  assert.ok(Object.hasOwn(ErrorCatalog, body.error.code), `unknown code ${where}`);
  return assertError(res, res.statusCode, body.error.code as ErrorCode, what);
}

/** Asserts a detail of a 400 VALIDATION_FAILED (or INVALID_TEXT) names `path`. */
function assertDetailPath(body: ErrorJson, path: string, what = ''): void {
  const paths = (body.error.details ?? []).map((d) => d.path);
  assert.ok(paths.includes(path), `${what}: expected a detail at ${path}, got ${paths.join(', ')}`);
}

/** Percent-encodes every code point; a lone surrogate becomes its (invalid) 3-byte form. */
function percentEncode(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (cp >= 0xd800 && cp <= 0xdfff) {
      const hex = (b: number) => `%${b.toString(16).toUpperCase()}`;
      out += hex(0xe0 | (cp >> 12)) + hex(0x80 | ((cp >> 6) & 0x3f)) + hex(0x80 | (cp & 0x3f));
    } else {
      out += encodeURIComponent(ch);
    }
  }
  return out;
}

/** What the store holds for the fixture user, for "nothing half-written" comparisons. */
interface Fixture {
  userId: string;
  /** A live memory of the user. */
  liveId: string;
  /** A deleted (restorable) memory of the user. */
  deletedId: string;
  /** An active session of the user (without messages). */
  sessionId: string;
  snapshot: () => Promise<unknown>;
}

async function createMemory(t: TestApp, userId: string, content: string): Promise<string> {
  const res = await t.call({
    method: 'POST',
    url: '/v1/memories',
    headers: JSON_TYPE,
    payload: JSON.stringify({ userId, content }),
  });
  assert.equal(res.statusCode, 201, describeRes(res));
  return (res.json() as { id: string }).id;
}

/** A user with one live and one deleted memory and one active session, of tenant `acme`. */
async function fixture(t: TestApp, userId: string): Promise<Fixture> {
  const liveId = await createMemory(t, userId, 'live memory');
  const deletedId = await createMemory(t, userId, 'deleted memory');
  const del = await t.call({ method: 'DELETE', url: `/v1/memories/${deletedId}` });
  assert.equal(del.statusCode, 200, describeRes(del));
  const started = await t.call({
    method: 'POST',
    url: '/v1/sessions',
    headers: JSON_TYPE,
    payload: JSON.stringify({ userId }),
  });
  assert.equal(started.statusCode, 201, describeRes(started));
  const sessionId = (started.json() as { session: { id: string } }).session.id;
  const row = async (id: string) => {
    const r = await t.ctx.store.getMemory('acme', id);
    return r && { version: r.version, deletedAt: r.deletedAt, content: r.content, u: r.updatedAt };
  };
  return {
    userId,
    liveId,
    deletedId,
    sessionId,
    snapshot: async () => {
      const rows = await t.ctx.store.listMemories('acme', { userId, limit: 100, now: Date.now() });
      return {
        count: rows.length,
        rows: rows.map((r) => `${r.id}@${r.version}`),
        live: await row(liveId),
        deleted: await row(deletedId),
        history: [
          (await t.ctx.store.listHistory('acme', liveId)).length,
          (await t.ctx.store.listHistory('acme', deletedId)).length,
        ],
        // The user's sessions as stored, and the active sessions of every user and tenant.
        sessions: (await t.ctx.store.listSessions('acme', userId, null, 100)).map(
          (x) =>
            `${x.id}:${x.state}:${x.messageCount}:${x.lastActivityAt}:${x.expiresAt}:${x.summaryId}`,
        ),
        active: (await t.ctx.store.dueSessions(Number.MAX_SAFE_INTEGER, 100_000)).length,
      };
    },
  };
}

/** Sends a request that must be refused, and checks the store is unchanged by it. */
async function refused(
  t: TestApp,
  f: Fixture,
  options: InjectOptions,
  status: number,
  code: ErrorCode,
  what: string,
): Promise<ErrorJson> {
  const before = await f.snapshot();
  const res = await t.call(options);
  const body = assertError(res, status, code, what);
  assert.deepEqual(await f.snapshot(), before, `${what}: the store changed`);
  return body;
}

// ---------------------------------------------------------------------------------------------
// The route table
// ---------------------------------------------------------------------------------------------

type Item = Record<string, unknown>;

interface Route {
  name: string;
  method: Method;
  /** The route as registered, in OpenAPI form. */
  path: string;
  url: (f: Fixture) => string;
  /** The path with its id parameter replaced (already encoded), for path attacks. */
  withParam?: { name: 'id' | 'userId'; url: (encoded: string) => string };
  /** A valid JSON body for routes that take one. */
  body?: (f: Fixture) => Item;
  /** Where memory fields go: the body itself or its first batch item. */
  item?: 'body' | 'batch';
  writes: boolean;
  ifMatch?: boolean;
  okStatus: number;
}

const ROUTES: Route[] = [
  {
    name: 'POST /v1/memories',
    method: 'POST',
    path: '/v1/memories',
    url: () => '/v1/memories',
    body: (f) => ({ userId: f.userId, content: 'a valid memory' }),
    item: 'body',
    writes: true,
    okStatus: 201,
  },
  {
    name: 'POST /v1/memories/batch',
    method: 'POST',
    path: '/v1/memories/batch',
    url: () => '/v1/memories/batch',
    body: (f) => ({
      items: [
        { userId: f.userId, content: 'first' },
        { userId: f.userId, content: 'second' },
      ],
    }),
    item: 'batch',
    writes: true,
    okStatus: 201,
  },
  {
    name: 'GET /v1/memories/:id',
    method: 'GET',
    path: '/v1/memories/{id}',
    url: (f) => `/v1/memories/${f.liveId}`,
    withParam: { name: 'id', url: (id) => `/v1/memories/${id}` },
    writes: false,
    okStatus: 200,
  },
  {
    name: 'PATCH /v1/memories/:id',
    method: 'PATCH',
    path: '/v1/memories/{id}',
    url: (f) => `/v1/memories/${f.liveId}`,
    withParam: { name: 'id', url: (id) => `/v1/memories/${id}` },
    body: () => ({ content: 'changed' }),
    item: 'body',
    writes: true,
    ifMatch: true,
    okStatus: 200,
  },
  {
    name: 'DELETE /v1/memories/:id',
    method: 'DELETE',
    path: '/v1/memories/{id}',
    url: (f) => `/v1/memories/${f.liveId}`,
    withParam: { name: 'id', url: (id) => `/v1/memories/${id}` },
    writes: true,
    ifMatch: true,
    okStatus: 200,
  },
  {
    name: 'POST /v1/memories/:id/restore',
    method: 'POST',
    path: '/v1/memories/{id}/restore',
    url: (f) => `/v1/memories/${f.deletedId}/restore`,
    withParam: { name: 'id', url: (id) => `/v1/memories/${id}/restore` },
    writes: true,
    okStatus: 200,
  },
  {
    name: 'GET /v1/memories/:id/history',
    method: 'GET',
    path: '/v1/memories/{id}/history',
    url: (f) => `/v1/memories/${f.liveId}/history`,
    withParam: { name: 'id', url: (id) => `/v1/memories/${id}/history` },
    writes: false,
    okStatus: 200,
  },
  {
    name: 'GET /v1/users/:userId/memories',
    method: 'GET',
    path: '/v1/users/{userId}/memories',
    url: (f) => `/v1/users/${f.userId}/memories`,
    withParam: { name: 'userId', url: (id) => `/v1/users/${id}/memories` },
    writes: false,
    okStatus: 200,
  },
  {
    name: 'POST /v1/users/:userId/memories/search',
    method: 'POST',
    path: '/v1/users/{userId}/memories/search',
    url: (f) => `/v1/users/${f.userId}/memories/search`,
    withParam: { name: 'userId', url: (id) => `/v1/users/${id}/memories/search` },
    body: () => ({ query: 'live memory' }),
    writes: false,
    okStatus: 200,
  },
  {
    name: 'GET /v1/users/:userId/export',
    method: 'GET',
    path: '/v1/users/{userId}/export',
    url: (f) => `/v1/users/${f.userId}/export`,
    withParam: { name: 'userId', url: (id) => `/v1/users/${id}/export` },
    writes: false,
    okStatus: 200,
  },
  // Session routes come before the user's erasure: the valid-request tests run in table order,
  // and the end (last of them) ends the fixture's session.
  {
    name: 'POST /v1/sessions',
    method: 'POST',
    path: '/v1/sessions',
    url: () => '/v1/sessions',
    body: (f) => ({ userId: f.userId, context: 'live memory' }),
    writes: true,
    okStatus: 201,
  },
  {
    name: 'POST /v1/sessions/:id/messages',
    method: 'POST',
    path: '/v1/sessions/{id}/messages',
    url: (f) => `/v1/sessions/${f.sessionId}/messages`,
    withParam: { name: 'id', url: (id) => `/v1/sessions/${id}/messages` },
    body: () => ({ messages: [{ role: 'user', content: 'a valid message' }] }),
    writes: true,
    okStatus: 201,
  },
  {
    name: 'GET /v1/sessions/:id',
    method: 'GET',
    path: '/v1/sessions/{id}',
    url: (f) => `/v1/sessions/${f.sessionId}`,
    withParam: { name: 'id', url: (id) => `/v1/sessions/${id}` },
    writes: false,
    okStatus: 200,
  },
  {
    name: 'POST /v1/sessions/:id/touch',
    method: 'POST',
    path: '/v1/sessions/{id}/touch',
    url: (f) => `/v1/sessions/${f.sessionId}/touch`,
    withParam: { name: 'id', url: (id) => `/v1/sessions/${id}/touch` },
    writes: true,
    okStatus: 200,
  },
  {
    name: 'GET /v1/users/:userId/sessions',
    method: 'GET',
    path: '/v1/users/{userId}/sessions',
    url: (f) => `/v1/users/${f.userId}/sessions`,
    withParam: { name: 'userId', url: (id) => `/v1/users/${id}/sessions` },
    writes: false,
    okStatus: 200,
  },
  {
    name: 'POST /v1/sessions/:id/end',
    method: 'POST',
    path: '/v1/sessions/{id}/end',
    url: (f) => `/v1/sessions/${f.sessionId}/end`,
    withParam: { name: 'id', url: (id) => `/v1/sessions/${id}/end` },
    writes: true,
    okStatus: 200,
  },
  {
    name: 'DELETE /v1/users/:userId',
    method: 'DELETE',
    path: '/v1/users/{userId}',
    url: (f) => `/v1/users/${f.userId}`,
    withParam: { name: 'userId', url: (id) => `/v1/users/${id}` },
    writes: true,
    okStatus: 200,
  },
  {
    name: 'GET /v1/stats/cache',
    method: 'GET',
    path: '/v1/stats/cache',
    url: () => '/v1/stats/cache',
    writes: false,
    okStatus: 200,
  },
  {
    name: 'GET /v1/stats/memory',
    method: 'GET',
    path: '/v1/stats/memory',
    url: () => '/v1/stats/memory',
    writes: false,
    okStatus: 200,
  },
  {
    name: 'GET /v1/stats/store',
    method: 'GET',
    path: '/v1/stats/store',
    url: () => '/v1/stats/store',
    writes: false,
    okStatus: 200,
  },
];

/** Routes whose requests carry a body that the server parses (every non-GET route). */
const BODY_PARSING = ROUTES.filter((r) => r.method !== 'GET');
/** Routes with a body schema. */
const BODY_ROUTES = ROUTES.filter((r) => r.body !== undefined);
const WRITE_ROUTES = ROUTES.filter((r) => r.writes);
const PARAM_ROUTES = ROUTES.filter((r) => r.withParam !== undefined);

/** The route's valid body (or `{}` for body-less routes) with `patch` merged into its item. */
function bodyWith(route: Route, f: Fixture, patch: Item = {}): Item {
  const body = structuredClone(route.body?.(f) ?? {});
  if (route.item === 'batch') Object.assign((body.items as Item[])[0] as Item, patch);
  else Object.assign(body, patch);
  return body;
}

const MARK = '@@mark@@';

/** The JSON text of {@link bodyWith}, with every `"@@mark@@"` replaced by raw JSON text. */
function rawWith(route: Route, f: Fixture, patch: Item, raw: string): string {
  return JSON.stringify(bodyWith(route, f, patch)).replaceAll(JSON.stringify(MARK), raw);
}

/** The route's valid request, with overrides. */
function request(route: Route, f: Fixture, extra: Partial<InjectOptions> = {}): InjectOptions {
  const base: InjectOptions = { method: route.method, url: route.url(f) };
  if (route.body) {
    base.headers = { ...JSON_TYPE };
    base.payload = JSON.stringify(route.body(f));
  }
  return { ...base, ...extra, headers: { ...base.headers, ...extra.headers } };
}

/** Where a memory field's problems are reported for this route. */
function fieldPath(route: Route, field: string): string {
  return route.item === 'batch' ? `/body/items/0${field}` : `/body${field}`;
}

/** A validation failure: VALIDATION_FAILED with a detail, or for a batch item, BATCH_REJECTED. */
async function refusedField(
  t: TestApp,
  f: Fixture,
  route: Route,
  options: InjectOptions,
  path: string,
  what: string,
): Promise<void> {
  if (route.item === 'batch') {
    const body = await refused(t, f, options, 400, 'ENGRAM_BATCH_REJECTED', what);
    const items = body.error.items ?? [];
    assert.deepEqual(
      items.map((i) => i.index),
      [0],
      `${what}: ${JSON.stringify(items)}`,
    );
    const paths = items[0]?.errors.map((e) => e.path) ?? [];
    assert.ok(paths.includes(path), `${what}: expected ${path}, got ${paths.join(', ')}`);
  } else {
    const body = await refused(t, f, options, 400, 'ENGRAM_VALIDATION_FAILED', what);
    assertDetailPath(body, path, what);
  }
}

const DAY = 86_400_000;
const future = () => new Date(Date.now() + 10 * DAY).toISOString();
const past = () => new Date(Date.now() - 10 * DAY).toISOString();

/** Metadata of `levels` nested objects (the metadata object is level 1), ending in a scalar. */
function nested(levels: number): Item {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = { k: value };
  return value as Item;
}

// ---------------------------------------------------------------------------------------------
// Every route × every class of bad input
// ---------------------------------------------------------------------------------------------

describe('bad input: every route', () => {
  let t: TestApp;
  let f: Fixture;
  let revokedKey: string;
  let forgedKeys: string[];

  before(async () => {
    t = await testApp();
    f = await fixture(t, 'u-bad');
    // A key that worked, then was revoked.
    const fresh = await t.ctx.keys.create('acme');
    const ok = await t.call({
      method: 'GET',
      url: `/v1/users/${f.userId}/memories`,
      headers: { authorization: `Bearer ${fresh.key}` },
    });
    assert.equal(ok.statusCode, 200);
    assert.equal(await t.ctx.keys.revoke(fresh.id), true);
    revokedKey = fresh.key;
    // Well-formed keys whose id and secret come from different tenants' keys.
    const [, acmeId, acmeSecret] = /^egm_([0-9a-f]{12})_(.+)$/.exec(t.key) ?? [];
    const [, otherId, otherSecret] = /^egm_([0-9a-f]{12})_(.+)$/.exec(t.otherKey) ?? [];
    forgedKeys = [`egm_${acmeId}_${otherSecret}`, `egm_${otherId}_${acmeSecret}`];
  });
  after(async () => {
    await t.close();
  });

  for (const route of ROUTES) {
    describe(route.name, () => {
      it('401 ENGRAM_UNAUTHORIZED for a missing, malformed, forged, unknown or revoked key', async () => {
        const missing = await t.app.inject(request(route, f));
        assertError(missing, 401, 'ENGRAM_UNAUTHORIZED', 'no Authorization header');
        const bad = [
          '',
          'Bearer',
          'Bearer ',
          `Basic ${Buffer.from('acme:secret').toString('base64')}`,
          `Token ${t.key}`,
          `${t.key}`,
          `Bearer ${t.key} extra`,
          `Bearer ${t.key}x`,
          `Bearer ${t.key.slice(0, -1)}`,
          'Bearer egm_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
          'Bearer not-a-key',
          `Bearer ${'x'.repeat(5000)}`,
          ...forgedKeys.map((k) => `Bearer ${k}`),
          `Bearer ${revokedKey}`,
        ];
        for (const authorization of bad) {
          await refused(
            t,
            f,
            request(route, f, { headers: { authorization } }),
            401,
            'ENGRAM_UNAUTHORIZED',
            `Authorization: ${authorization.slice(0, 40)}`,
          );
        }
      });

      it('4xx with a catalog code for undecodable or NUL-bearing query strings', async () => {
        const url = route.url(f);
        const cases: [string, ErrorCode][] = [
          ['x=%00', 'ENGRAM_INVALID_TEXT'],
          ['x=a%00b', 'ENGRAM_INVALID_TEXT'],
          ['x=%ED%A0%80', 'ENGRAM_BAD_URL'],
          ['x=%E0%A4%A', 'ENGRAM_BAD_URL'],
          ['x=%FF%FE', 'ENGRAM_BAD_URL'],
          ['x=%', 'ENGRAM_BAD_URL'],
        ];
        for (const [query, code] of cases) {
          await refused(t, f, request(route, f, { url: `${url}?${query}` }), 400, code, query);
        }
      });

      if (route.withParam) {
        const param = route.withParam;
        it(`400 for over-long and non-ASCII :${param.name} values, never 404 or 500`, async () => {
          const pointer = `/params/${param.name}`;
          const invalid = [
            'A'.repeat(300),
            'A'.repeat(5000),
            encodeURIComponent('😀'),
            encodeURIComponent('\u202Eabc\u202C'),
            encodeURIComponent('e\u0301\u0301\u0301'),
            encodeURIComponent('مرحبا'),
            encodeURIComponent('a b'),
            encodeURIComponent('a/b'),
            '😀',
            param.name === 'id'
              ? '01m8dd942xpvcch4y8m9pbpkrc'
              : encodeURIComponent('a'.repeat(129)),
          ];
          for (const value of invalid) {
            const body = await refused(
              t,
              f,
              request(route, f, { url: param.url(value) }),
              400,
              'ENGRAM_VALIDATION_FAILED',
              `:${param.name} = ${value.slice(0, 30)}… (${value.length})`,
            );
            assertDetailPath(body, pointer, value.slice(0, 30));
          }
          const garbage: [string, ErrorCode][] = [
            ['%E0%A4%A', 'ENGRAM_BAD_URL'],
            ['%ED%A0%80', 'ENGRAM_BAD_URL'],
            ['%', 'ENGRAM_BAD_URL'],
            ['%00', 'ENGRAM_INVALID_TEXT'],
            ['a%00b', 'ENGRAM_INVALID_TEXT'],
            // Past the router's parameter length limit.
            ['A'.repeat(20_000), 'ENGRAM_BAD_REQUEST'],
          ];
          for (const [value, code] of garbage) {
            await refused(
              t,
              f,
              request(route, f, { url: param.url(value) }),
              400,
              code,
              `:${param.name} = ${value.slice(0, 30)}`,
            );
          }
        });
      }

      if (route.method !== 'GET') {
        it('400 ENGRAM_JSON_TOO_DEEP for 100,000 nested brackets, without a stack overflow', async () => {
          for (const raw of ['['.repeat(100_000), '{"a":'.repeat(50_000), `${'['.repeat(33)}`]) {
            await refused(
              t,
              f,
              request(route, f, { headers: JSON_TYPE, payload: raw }),
              400,
              'ENGRAM_JSON_TOO_DEEP',
              raw.slice(0, 10),
            );
          }
          // Deep inside the route's own fields too.
          await refused(
            t,
            f,
            request(route, f, {
              headers: JSON_TYPE,
              payload: rawWith(route, f, { metadata: MARK }, `${'['.repeat(40)}${']'.repeat(40)}`),
            }),
            400,
            'ENGRAM_JSON_TOO_DEEP',
            'metadata of 40 levels',
          );
        });

        it('400 ENGRAM_FORBIDDEN_KEY for __proto__ and constructor, top level and nested', async () => {
          const cases: [string, Item, string][] = [
            ['__proto__ at top level', { [MARK]: { polluted: true } }, '"__proto__"'],
            ['constructor at top level', { [MARK]: { prototype: {} } }, '"constructor"'],
            ['escaped \\u005f_proto__', { [MARK]: { polluted: true } }, '"\\u005f_proto__"'],
            ['escaped constructor', { [MARK]: 1 }, '"\\u0063onstructor"'],
            ['__proto__ in metadata', { metadata: { [MARK]: { polluted: true } } }, '"__proto__"'],
            ['constructor in metadata', { metadata: { a: { [MARK]: 1 } } }, '"constructor"'],
            ['escaped in metadata', { metadata: { [MARK]: 1 } }, '"\\u005f\\u005fproto\\u005f_"'],
            ['__proto__ in an array', { metadata: { list: [{ [MARK]: 1 }] } }, '"__proto__"'],
          ];
          for (const [what, patch, raw] of cases) {
            const payload = rawWith(route, f, patch, raw);
            await refused(
              t,
              f,
              request(route, f, { headers: JSON_TYPE, payload }),
              400,
              'ENGRAM_FORBIDDEN_KEY',
              what,
            );
          }
          assert.equal(({} as Record<string, unknown>).polluted, undefined);
        });

        it('400 ENGRAM_INVALID_ENCODING for bytes that are not UTF-8', async () => {
          const valid = Buffer.from(JSON.stringify(bodyWith(route, f, { content: MARK })));
          const at = valid.indexOf(MARK);
          const cases: [string, number[]][] = [
            ['0xFF', [0xff]],
            ['lone continuation byte', [0x80]],
            ['truncated 3-byte sequence', [0xe2, 0x82]],
            ['overlong slash', [0xc0, 0xaf]],
            ['CESU-8 surrogate', [0xed, 0xa0, 0x80]],
            ['Latin-1 é', [0x63, 0x61, 0x66, 0xe9]],
          ];
          for (const [what, bytes] of cases) {
            const payload = Buffer.concat([
              valid.subarray(0, at),
              Buffer.from(bytes),
              valid.subarray(at + MARK.length),
            ]);
            await refused(
              t,
              f,
              request(route, f, { headers: JSON_TYPE, payload }),
              400,
              'ENGRAM_INVALID_ENCODING',
              what,
            );
          }
        });

        it('400 ENGRAM_MALFORMED_JSON for malformed or empty JSON bodies', async () => {
          const cases = [
            '',
            '{',
            '{"userId":',
            "{'a':1}",
            '{"a":1,}',
            '{"a":1} trailing',
            'NaN',
            'undefined',
            '{"a":01}',
            '"unterminated',
            '{"a":"\\x41"}',
          ];
          for (const payload of cases) {
            await refused(
              t,
              f,
              request(route, f, { headers: JSON_TYPE, payload }),
              400,
              'ENGRAM_MALFORMED_JSON',
              JSON.stringify(payload),
            );
          }
        });

        it('415 ENGRAM_UNSUPPORTED_MEDIA_TYPE for a body that is not JSON in UTF-8', async () => {
          const valid = JSON.stringify(bodyWith(route, f));
          const types = [
            'text/plain',
            'application/x-www-form-urlencoded',
            'multipart/form-data; boundary=x',
            'application/xml',
            'application/json; charset=latin1',
            'application/json; charset=iso-8859-1',
            'application/json; charset="utf-16"',
            'application/jsonx',
          ];
          for (const type of types) {
            await refused(
              t,
              f,
              request(route, f, { headers: { 'content-type': type }, payload: valid }),
              415,
              'ENGRAM_UNSUPPORTED_MEDIA_TYPE',
              type,
            );
          }
          // A body without any Content-Type.
          const bare = request(route, f, { payload: valid });
          delete (bare.headers as Record<string, string>)['content-type'];
          await refused(t, f, bare, 415, 'ENGRAM_UNSUPPORTED_MEDIA_TYPE', 'no Content-Type');
        });
      }

      // Memory fields: routes whose body is (or holds) a memory.
      if (route.item) {
        it('400 ENGRAM_INVALID_TEXT for NUL and lone surrogates in content, tags and metadata', async () => {
          const places: [string, Item][] = [
            ['content', { content: MARK }],
            ['tag', { tags: ['ok', MARK] }],
            ['metadata value', { metadata: { note: MARK } }],
            ['nested metadata value', { metadata: { a: { b: [MARK] } } }],
            ['metadata key', { metadata: { [MARK]: 1 } }],
            ['nested metadata key', { metadata: { a: { [MARK]: 1 } } }],
          ];
          const texts = [
            '"a\\u0000b"',
            '"\\u0000"',
            '"a\\ud800b"',
            '"\\udfff"',
            '"\\udc00\\ud800"',
          ];
          for (const [where, patch] of places) {
            for (const raw of texts) {
              await refused(
                t,
                f,
                request(route, f, { headers: JSON_TYPE, payload: rawWith(route, f, patch, raw) }),
                400,
                'ENGRAM_INVALID_TEXT',
                `${raw} in ${where}`,
              );
            }
          }
          // A raw NUL byte in the text is not valid JSON in the first place.
          const rawNul = rawWith(route, f, { content: MARK }, '"a\u0000b"');
          await refused(
            t,
            f,
            request(route, f, { headers: JSON_TYPE, payload: rawNul }),
            400,
            'ENGRAM_MALFORMED_JSON',
            'raw NUL byte in a string',
          );
        });

        it('400 with details[].path for out-of-range numbers and wrong types', async () => {
          const cases: [string, Item, string, string?][] = [
            ['importance -0.1', { importance: -0.1 }, '/importance'],
            ['importance 1.5', { importance: 1.5 }, '/importance'],
            ['importance 1e309', { importance: MARK }, '/importance', '1e309'],
            ['importance -1e309', { importance: MARK }, '/importance', '-1e309'],
            ['importance "NaN"', { importance: 'NaN' }, '/importance'],
            ['importance "Infinity"', { importance: 'Infinity' }, '/importance'],
            ['importance "0.5"', { importance: '0.5' }, '/importance'],
            ['importance null', { importance: null }, '/importance'],
            ['content 5', { content: 5 }, '/content'],
            ['content ["x"]', { content: ['x'] }, '/content'],
            ['content null', { content: null }, '/content'],
            ['content ""', { content: '' }, '/content'],
            ['content blank', { content: ' \n\t ' }, '/content'],
            ['tags "a"', { tags: 'a' }, '/tags'],
            ['tags [1]', { tags: [1] }, '/tags/0'],
            ['tags [""]', { tags: [''] }, '/tags/0'],
            ['tag of 65 chars', { tags: ['t'.repeat(65)] }, '/tags/0'],
            ['33 tags', { tags: Array.from({ length: 33 }, (_, i) => `t${i}`) }, '/tags'],
            ['pinned "true"', { pinned: 'true' }, '/pinned'],
            ['pinned 1', { pinned: 1 }, '/pinned'],
            ['kind "Not A Kind"', { kind: 'Not A Kind' }, '/kind'],
            ['kind 65 chars', { kind: `k${'a'.repeat(64)}` }, '/kind'],
            ['metadata []', { metadata: [] }, '/metadata'],
            ['metadata "x"', { metadata: 'x' }, '/metadata'],
            ['metadata null', { metadata: null }, '/metadata'],
            ['expiresAt "tomorrow"', { expiresAt: 'tomorrow' }, '/expiresAt'],
            ['expiresAt 0', { expiresAt: 0 }, '/expiresAt'],
          ];
          if (route.item !== undefined && route.name !== 'PATCH /v1/memories/:id') {
            cases.push(
              ['userId 12', { userId: 12 }, '/userId'],
              ['userId with a space', { userId: 'a b' }, '/userId'],
              ['userId of 129 chars', { userId: 'u'.repeat(129) }, '/userId'],
              ['agentId ""', { agentId: '' }, '/agentId'],
              ['createdAt "yesterday"', { createdAt: 'yesterday' }, '/createdAt'],
            );
          }
          for (const [what, patch, path, raw] of cases) {
            const payload =
              raw === undefined
                ? JSON.stringify(bodyWith(route, f, patch))
                : rawWith(route, f, patch, raw);
            await refusedField(
              t,
              f,
              route,
              request(route, f, { headers: JSON_TYPE, payload }),
              fieldPath(route, path),
              what,
            );
          }
        });

        it('400 for rule problems: future createdAt, past expiresAt, content over 16 KiB, deep or wide metadata', async () => {
          const euros = '€'.repeat(6000);
          assert.ok(euros.length < 16_384 && Buffer.byteLength(euros) === 18_000);
          const wide: Item = {};
          for (let i = 0; i < 129; i++) wide[`k${i}`] = i;
          const wideNested: Item = { a: {}, b: {} };
          for (let i = 0; i < 65; i++) {
            (wideNested.a as Item)[`k${i}`] = i;
            (wideNested.b as Item)[`k${i}`] = i;
          }
          const cases: [string, Item, string][] = [
            ['expiresAt in the past', { expiresAt: past() }, '/expiresAt'],
            [
              'expiresAt now-ish',
              { expiresAt: new Date(Date.now() - 1000).toISOString() },
              '/expiresAt',
            ],
            ['content of 18,000 bytes in 6,000 chars', { content: euros }, '/content'],
            ['content of 16,385 ASCII bytes', { content: 'a'.repeat(16_385) }, '/content'],
            ['metadata 6 levels deep', { metadata: nested(6) }, '/metadata'],
            ['metadata 10 levels deep', { metadata: nested(10) }, '/metadata'],
            ['metadata arrays 6 levels deep', { metadata: { a: [[[[[1]]]]] } }, '/metadata'],
            [
              'metadata 6 levels, innermost empty',
              { metadata: { a: { b: { c: { d: { e: {} } } } } } },
              '/metadata',
            ],
            ['metadata with 129 keys', { metadata: wide }, '/metadata'],
            ['metadata with 132 keys in all', { metadata: wideNested }, '/metadata'],
            ['metadata over 8 KiB', { metadata: { big: 'x'.repeat(9000) } }, '/metadata'],
          ];
          if (route.name !== 'PATCH /v1/memories/:id') {
            cases.push(['createdAt in the future', { createdAt: future() }, '/createdAt']);
          }
          for (const [what, patch, path] of cases) {
            await refusedField(
              t,
              f,
              route,
              request(route, f, {
                headers: JSON_TYPE,
                payload: JSON.stringify(bodyWith(route, f, patch)),
              }),
              fieldPath(route, path),
              what,
            );
          }
        });

        it('accepts metadata exactly 5 levels deep and with 128 keys: the limits themselves', async () => {
          // Written for a throwaway user, so that the fixture user keeps its two memories.
          const keys: Item = {};
          for (let i = 0; i < 128; i++) keys[`k${i}`] = i;
          const edges: [string, Item][] = [
            ['5 levels of objects', nested(5)],
            ['5 levels with arrays', { a: [[[[1]]]] }],
            ['5 levels, innermost empty', { a: { b: { c: { d: {} } } } }],
            ['128 keys', keys],
          ];
          for (const [what, metadata] of edges) {
            const memory = { userId: 'u-edge', content: 'edge', metadata };
            const options: InjectOptions =
              route.item === 'batch'
                ? { url: route.url(f), payload: JSON.stringify({ items: [memory] }) }
                : route.method === 'PATCH'
                  ? {
                      url: `/v1/memories/${await createMemory(t, 'u-edge', 'edge')}`,
                      payload: JSON.stringify({ metadata }),
                    }
                  : { url: route.url(f), payload: JSON.stringify(memory) };
            const res = await t.call({ method: route.method, headers: JSON_TYPE, ...options });
            assert.equal(res.statusCode, route.okStatus, `${what}: ${describeRes(res)}`);
          }
        });

        it('400 ENGRAM_VALIDATION_FAILED for unknown fields', async () => {
          const top = { ...bodyWith(route, f), bogus: 1 };
          const body = await refused(
            t,
            f,
            request(route, f, { headers: JSON_TYPE, payload: JSON.stringify(top) }),
            400,
            'ENGRAM_VALIDATION_FAILED',
            'unknown top-level field',
          );
          assert.ok(body.error.details?.some((d) => d.path === '/body' && /bogus/.test(d.message)));
          const fields = ['id', 'version', 'deletedAt', 'tenant', 'Content'];
          if (route.name === 'PATCH /v1/memories/:id') fields.push('userId', 'createdAt');
          for (const field of fields) {
            const payload = JSON.stringify(bodyWith(route, f, { [field]: 'x' }));
            const what = `unknown field ${field}`;
            if (route.item === 'batch') {
              const rejected = await refused(
                t,
                f,
                request(route, f, { headers: JSON_TYPE, payload }),
                400,
                'ENGRAM_BATCH_REJECTED',
                what,
              );
              assert.deepEqual(
                rejected.error.items?.map((i) => i.index),
                [0],
              );
            } else {
              const rejected = await refused(
                t,
                f,
                request(route, f, { headers: JSON_TYPE, payload }),
                400,
                'ENGRAM_VALIDATION_FAILED',
                what,
              );
              assertDetailPath(rejected, '/body', what);
            }
          }
        });
      }

      if (route.ifMatch) {
        it('400 ENGRAM_INVALID_IF_MATCH for a malformed If-Match; 412 for a stale one', async () => {
          for (const ifMatch of [
            'abc',
            '"abc"',
            'W/abc',
            '1.5',
            '-1',
            '1, 2',
            '1'.repeat(16),
            '',
          ]) {
            await refused(
              t,
              f,
              request(route, f, { headers: { 'if-match': ifMatch } }),
              400,
              'ENGRAM_INVALID_IF_MATCH',
              `If-Match: ${ifMatch}`,
            );
          }
          const body = await refused(
            t,
            f,
            request(route, f, { headers: { 'if-match': '"999"' } }),
            412,
            'ENGRAM_VERSION_CONFLICT',
            'stale If-Match',
          );
          assert.equal(body.error.currentVersion, 1);
        });
      }

      if (route.writes) {
        it('400 ENGRAM_INVALID_IDEMPOTENCY_KEY for an empty, blank, over-long or spaced key', async () => {
          for (const key of [
            '',
            '   ',
            'k'.repeat(256),
            'k'.repeat(300),
            'a b',
            'clé',
            'a\u007fb',
          ]) {
            await refused(
              t,
              f,
              request(route, f, { headers: { 'idempotency-key': key } }),
              400,
              'ENGRAM_INVALID_IDEMPOTENCY_KEY',
              `Idempotency-Key: ${JSON.stringify(key.slice(0, 20))} (${key.length})`,
            );
          }
        });
      }
    });
  }

  describe('GET /v1/users/:userId/memories query', () => {
    it('400 with details[].path for out-of-range limits and bad filters', async () => {
      const cases: [string, string][] = [
        ['limit=501', '/querystring/limit'],
        ['limit=1e12', '/querystring/limit'],
        ['limit=1000000000000', '/querystring/limit'],
        ['limit=-1', '/querystring/limit'],
        ['limit=0', '/querystring/limit'],
        ['limit=1.5', '/querystring/limit'],
        ['limit=abc', '/querystring/limit'],
        ['limit=NaN', '/querystring/limit'],
        ['limit=', '/querystring/limit'],
        ['limit=1&limit=2', '/querystring/limit'],
        ['pinned=maybe', '/querystring/pinned'],
        ['kind=Not%20A%20Kind', '/querystring/kind'],
        [`kind=${encodeURIComponent('😀')}`, '/querystring/kind'],
        [`kind=${encodeURIComponent('ki\u0301nd')}`, '/querystring/kind'],
        [`tag=${'t'.repeat(65)}`, '/querystring/tag/0'],
        [Array.from({ length: 33 }, (_, i) => `tag=t${i}`).join('&'), '/querystring/tag'],
        ['tag=', '/querystring/tag/0'],
        [`agentId=${encodeURIComponent('a b')}`, '/querystring/agentId'],
        [`sessionId=${'s'.repeat(129)}`, '/querystring/sessionId'],
        ['createdAfter=yesterday', '/querystring/createdAfter'],
        ['createdBefore=2026-13-01T00:00:00Z', '/querystring/createdBefore'],
        ['updatedAfter=1700000000000', '/querystring/updatedAfter'],
        [`updatedBefore=${encodeURIComponent('\u202E2026')}`, '/querystring/updatedBefore'],
        [`cursor=${'c'.repeat(129)}`, '/querystring/cursor'],
      ];
      for (const [query, path] of cases) {
        const res = await t.call({ method: 'GET', url: `/v1/users/${f.userId}/memories?${query}` });
        const body = assertError(res, 400, 'ENGRAM_VALIDATION_FAILED', query.slice(0, 60));
        assertDetailPath(body, path, query.slice(0, 60));
      }
      const unknown = await t.call({
        method: 'GET',
        url: `/v1/users/${f.userId}/memories?bogus=1`,
      });
      const body = assertError(unknown, 400, 'ENGRAM_VALIDATION_FAILED', 'unknown parameter');
      assertDetailPath(body, '/querystring', 'unknown parameter');
    });

    it('400 ENGRAM_INVALID_CURSOR for cursors that are not ours', async () => {
      const cursors = [
        'zzz',
        'not a cursor',
        Buffer.from('v1:nope').toString('base64url'),
        Buffer.from(`v2:${f.liveId}`).toString('base64url'),
        Buffer.from(`v1:${f.liveId.toLowerCase()}`).toString('base64url'),
        Buffer.from('v1:😀').toString('base64url'),
        '',
      ];
      for (const cursor of cursors) {
        const res = await t.call({
          method: 'GET',
          url: `/v1/users/${f.userId}/memories?cursor=${encodeURIComponent(cursor)}`,
        });
        assertError(res, 400, 'ENGRAM_INVALID_CURSOR', `cursor ${JSON.stringify(cursor)}`);
      }
      const ours = Buffer.from(`v1:${f.liveId}`).toString('base64url');
      const ok = await t.call({
        method: 'GET',
        url: `/v1/users/${f.userId}/memories?cursor=${ours}`,
      });
      assert.equal(ok.statusCode, 200, describeRes(ok));
    });

    it('NUL, lone surrogates and undecodable escapes in filters are 400s with catalog codes', async () => {
      const cases: [string, ErrorCode, string?][] = [
        ['kind=%00', 'ENGRAM_INVALID_TEXT', '/querystring/kind'],
        // One value is checked before it is made an array; several are checked one by one.
        ['tag=%00', 'ENGRAM_INVALID_TEXT', '/querystring/tag'],
        ['tag=ok&tag=a%00', 'ENGRAM_INVALID_TEXT', '/querystring/tag/1'],
        ['agentId=%00', 'ENGRAM_INVALID_TEXT', '/querystring/agentId'],
        ['cursor=%00', 'ENGRAM_INVALID_TEXT', '/querystring/cursor'],
        ['tag=%ED%A0%80', 'ENGRAM_BAD_URL'],
        ['kind=%ED%A0%80', 'ENGRAM_BAD_URL'],
        ['tag=%ED%B0%80%ED%A0%80', 'ENGRAM_BAD_URL'],
        ['tag=%E0%A4%A', 'ENGRAM_BAD_URL'],
        ['tag=%FF', 'ENGRAM_BAD_URL'],
        ['tag=%C0%AF', 'ENGRAM_BAD_URL'],
        ['tag=%zz', 'ENGRAM_BAD_URL'],
        ['limit=10&tag=ok&sessionId=%E0%A4%A', 'ENGRAM_BAD_URL'],
      ];
      for (const [query, code, path] of cases) {
        const res = await t.call({ method: 'GET', url: `/v1/users/${f.userId}/memories?${query}` });
        const body = assertError(res, 400, code, query);
        if (path) assertDetailPath(body, path, query);
      }
    });

    it('free-text tags accept any well-formed Unicode (emoji, RTL, combining marks)', async () => {
      for (const tag of ['😀', '\u202Eabc', 'e\u0301', 'שלום', '你好', '%', 'a&b=c']) {
        const res = await t.call({
          method: 'GET',
          url: `/v1/users/${f.userId}/memories?tag=${encodeURIComponent(tag)}`,
        });
        assert.equal(res.statusCode, 200, `${tag}: ${describeRes(res)}`);
        assert.deepEqual(res.json(), { items: [], nextCursor: null });
      }
    });
  });

  describe('POST /v1/users/:userId/memories/search body', () => {
    const url = () => `/v1/users/${f.userId}/memories/search`;
    const search = (body: Item | string) =>
      t.call({
        method: 'POST',
        url: url(),
        headers: JSON_TYPE,
        payload: typeof body === 'string' ? body : JSON.stringify(body),
      });

    it('400 with details[].path for out-of-range k, weights and bad filters', async () => {
      const cases: [string, Item | string, string][] = [
        ['no query', {}, '/body/query'],
        ['query 5', { query: 5 }, '/body/query'],
        ['query null', { query: null }, '/body/query'],
        ['query ["a"]', { query: ['a'] }, '/body/query'],
        ['query of 2,001 chars', { query: 'q'.repeat(2001) }, '/body/query'],
        ['k 0', { query: 'a', k: 0 }, '/body/k'],
        ['k 101', { query: 'a', k: 101 }, '/body/k'],
        ['k 1e12', { query: 'a', k: 1e12 }, '/body/k'],
        ['k 1.5', { query: 'a', k: 1.5 }, '/body/k'],
        ['k "10"', { query: 'a', k: '10' }, '/body/k'],
        ['k -1', { query: 'a', k: -1 }, '/body/k'],
        ['k 1e309', '{"query":"a","k":1e309}', '/body/k'],
        ['weights.text -1', { query: 'a', weights: { text: -1 } }, '/body/weights/text'],
        ['weights.recency 11', { query: 'a', weights: { recency: 11 } }, '/body/weights/recency'],
        ['weights.use "1"', { query: 'a', weights: { use: '1' } }, '/body/weights/use'],
        ['weights.bogus', { query: 'a', weights: { bogus: 1 } }, '/body/weights'],
        ['weights []', { query: 'a', weights: [] }, '/body/weights'],
        ['fusion "max"', { query: 'a', fusion: 'max' }, '/body/fusion'],
        ['explain "true"', { query: 'a', explain: 'true' }, '/body/explain'],
        ['kind "Not A Kind"', { query: 'a', kind: 'Not A Kind' }, '/body/kind'],
        ['tags "a"', { query: 'a', tags: 'a' }, '/body/tags'],
        ['tags [""]', { query: 'a', tags: [''] }, '/body/tags/0'],
        ['pinned 1', { query: 'a', pinned: 1 }, '/body/pinned'],
        ['agentId "a b"', { query: 'a', agentId: 'a b' }, '/body/agentId'],
        ['sessionId of 129', { query: 'a', sessionId: 's'.repeat(129) }, '/body/sessionId'],
        [
          'createdAfter "yesterday"',
          { query: 'a', createdAfter: 'yesterday' },
          '/body/createdAfter',
        ],
        ['updatedBefore 0', { query: 'a', updatedBefore: 0 }, '/body/updatedBefore'],
        ['unknown field', { query: 'a', limit: 10 }, '/body'],
      ];
      for (const [what, body, path] of cases) {
        const before = await f.snapshot();
        const res = await search(body);
        const error = assertError(res, 400, 'ENGRAM_VALIDATION_FAILED', what);
        assertDetailPath(error, path, what);
        assert.deepEqual(await f.snapshot(), before, `${what}: the store changed`);
      }
    });

    it('400 ENGRAM_INVALID_TEXT for NUL and lone surrogates in the query and filters', async () => {
      for (const raw of ['"a\\u0000b"', '"\\ud800"', '"x\\udfffy"']) {
        for (const field of ['query', 'kind', 'sessionId']) {
          const payload =
            field === 'query' ? `{"query":${raw}}` : `{"query":"ok","${field}":${raw}}`;
          const res = await search(payload);
          assertError(res, 400, 'ENGRAM_INVALID_TEXT', `${raw} in ${field}`);
        }
        const inTags = await search(`{"query":"ok","tags":["a",${raw}]}`);
        assertError(inTags, 400, 'ENGRAM_INVALID_TEXT', `${raw} in tags`);
      }
    });

    it('arbitrary Unicode queries never give a 500', async () => {
      const queries = [
        '',
        ' ',
        '😀😀😀',
        '東京で寿司を食べた',
        'ภาษาไทย',
        '\u202Eevil',
        'e\u0301',
        '"*( NEAR AND OR NOT ) \' -- ;',
        'a'.repeat(2000),
        'ﷺ'.repeat(500),
        '\u200b\u200c\u200d',
      ];
      for (const query of queries) {
        const res = await search({ query, explain: true });
        assert.equal(
          res.statusCode,
          200,
          `${JSON.stringify(query.slice(0, 20))}: ${describeRes(res)}`,
        );
      }
      await fc.assert(
        fc.asyncProperty(fc.string({ unit: 'grapheme', maxLength: 200 }), async (query) => {
          const res = await search({ query });
          assert.equal(res.statusCode, 200, describeRes(res));
        }),
        { numRuns: 200 },
      );
    });
  });

  describe('POST /v1/memories/batch', () => {
    it('400 ENGRAM_VALIDATION_FAILED for 1,001 items, no items, or no array; nothing written', async () => {
      const item = { userId: f.userId, content: 'x' };
      const cases: [string, unknown, string][] = [
        ['1,001 items', { items: Array.from({ length: 1001 }, () => item) }, '/body/items'],
        ['no items', { items: [] }, '/body/items'],
        ['items missing', {}, '/body/items'],
        ['items an object', { items: item }, '/body/items'],
        ['items a string', { items: 'x' }, '/body/items'],
        ['a bare array', [item], '/body'],
        ['unknown top-level field', { items: [item], bogus: 1 }, '/body'],
      ];
      for (const [what, payload, path] of cases) {
        const body = await refused(
          t,
          f,
          {
            method: 'POST',
            url: '/v1/memories/batch',
            headers: JSON_TYPE,
            payload: JSON.stringify(payload),
          },
          400,
          'ENGRAM_VALIDATION_FAILED',
          what,
        );
        assertDetailPath(body, path, what);
      }
    });

    it('one bad item among good ones: 400 ENGRAM_BATCH_REJECTED naming it; nothing written', async () => {
      const items = Array.from({ length: 10 }, (_, i) => ({
        userId: f.userId,
        content: `good ${i}`,
      }));
      for (const [index, bad, path] of [
        [0, { userId: f.userId, content: 5 }, '/body/items/0/content'],
        [9, { userId: f.userId, content: 'x', importance: 2 }, '/body/items/9/importance'],
        [4, { userId: f.userId, content: 'x', createdAt: future() }, '/body/items/4/createdAt'],
        [5, { userId: f.userId, content: '€'.repeat(6000) }, '/body/items/5/content'],
        [6, { userId: f.userId, content: 'x', surprise: true }, '/body/items/6'],
      ] as const) {
        const batch = items.map((item, i) => (i === index ? bad : item));
        const body = await refused(
          t,
          f,
          {
            method: 'POST',
            url: '/v1/memories/batch',
            headers: JSON_TYPE,
            payload: JSON.stringify({ items: batch }),
          },
          400,
          'ENGRAM_BATCH_REJECTED',
          `bad item ${index}`,
        );
        const reports = body.error.items ?? [];
        assert.deepEqual(
          reports.map((r) => r.index),
          [index],
          JSON.stringify(reports),
        );
        assert.ok(
          reports[0]?.errors.some((e) => e.path === path),
          `${path} in ${JSON.stringify(reports)}`,
        );
      }
    });

    it('several bad items (schema and rule problems mixed): every index reported; nothing written', async () => {
      const good = (i: number) => ({ userId: f.userId, content: `good ${i}` });
      const batch: unknown[] = Array.from({ length: 12 }, (_, i) => good(i));
      const bad: Record<number, unknown> = {
        1: { userId: f.userId, content: 5 }, // schema: wrong type (must not be coerced to "5")
        3: { userId: f.userId, content: 'x', createdAt: future() }, // rule: future createdAt
        4: { userId: f.userId, content: 'x', bogus: 1 }, // schema: unknown field
        7: { userId: f.userId, content: '€'.repeat(6000) }, // rule: over 16 KiB of UTF-8
        8: { userId: 'not valid!', content: 'x' }, // schema: pattern
        10: { userId: f.userId, content: 'x', expiresAt: past() }, // rule: past expiresAt
        11: { userId: f.userId, content: 'x', importance: null }, // schema: must not become 0
      };
      for (const [i, item] of Object.entries(bad)) batch[Number(i)] = item;
      const body = await refused(
        t,
        f,
        {
          method: 'POST',
          url: '/v1/memories/batch',
          headers: JSON_TYPE,
          payload: JSON.stringify({ items: batch }),
        },
        400,
        'ENGRAM_BATCH_REJECTED',
        'several bad items',
      );
      const reports = body.error.items ?? [];
      assert.deepEqual(
        reports.map((r) => r.index),
        Object.keys(bad).map(Number),
        JSON.stringify(reports),
      );
      for (const report of reports) {
        assert.ok(report.errors.length > 0);
        for (const e of report.errors) {
          assert.ok(e.path.startsWith(`/body/items/${report.index}`), JSON.stringify(e));
        }
      }
      // Only rule problems (the schema accepts every item): still every index, nothing written.
      const rules = Array.from({ length: 5 }, (_, i) => good(i));
      rules[0] = { ...good(0), createdAt: future() } as ReturnType<typeof good>;
      rules[3] = { ...good(3), expiresAt: past() } as ReturnType<typeof good>;
      const ruled = await refused(
        t,
        f,
        {
          method: 'POST',
          url: '/v1/memories/batch',
          headers: JSON_TYPE,
          payload: JSON.stringify({ items: rules }),
        },
        400,
        'ENGRAM_BATCH_REJECTED',
        'rule problems only',
      );
      assert.deepEqual(
        ruled.error.items?.map((r) => r.index),
        [0, 3],
      );
    });
  });

  describe('PATCH /v1/memories/:id', () => {
    it('400 for an empty patch and for fields that cannot change; version unchanged', async () => {
      for (const patch of [{}, { userId: 'someone-else' }, { createdAt: past() }, { version: 7 }]) {
        await refused(
          t,
          f,
          {
            method: 'PATCH',
            url: `/v1/memories/${f.liveId}`,
            headers: JSON_TYPE,
            payload: JSON.stringify(patch),
          },
          400,
          'ENGRAM_VALIDATION_FAILED',
          JSON.stringify(patch),
        );
      }
      const row = await t.ctx.store.getMemory('acme', f.liveId);
      assert.equal(row?.version, 1);
      assert.equal(row?.content, 'live memory');
    });
  });

  describe('session bodies', () => {
    const post = (url: string, body: unknown): InjectOptions => ({
      method: 'POST',
      url,
      headers: JSON_TYPE,
      payload: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const startUrl = '/v1/sessions';
    const messagesUrl = () => `/v1/sessions/${f.sessionId}/messages`;
    const ok = { role: 'user', content: 'fine' };

    it('POST /v1/sessions: 400 with details[].path for bad fields; no session started', async () => {
      const cases: [string, unknown, string][] = [
        ['missing userId', {}, '/body/userId'],
        ['missing userId, with a context', { context: 'hello' }, '/body/userId'],
        ['userId 12', { userId: 12 }, '/body/userId'],
        ['userId with a space', { userId: 'a b' }, '/body/userId'],
        ['userId ""', { userId: '' }, '/body/userId'],
        ['userId of 129 chars', { userId: 'u'.repeat(129) }, '/body/userId'],
        ['agentId ""', { userId: f.userId, agentId: '' }, '/body/agentId'],
        ['budget.chars -1', { userId: f.userId, budget: { chars: -1 } }, '/body/budget/chars'],
        ['budget.chars 1e7', { userId: f.userId, budget: { chars: 1e7 } }, '/body/budget/chars'],
        ['budget.chars "10"', { userId: f.userId, budget: { chars: '10' } }, '/body/budget/chars'],
        ['budget.chars 1.5', { userId: f.userId, budget: { chars: 1.5 } }, '/body/budget/chars'],
        ['budget.chars null', { userId: f.userId, budget: { chars: null } }, '/body/budget/chars'],
        ['budget.tokens -1', { userId: f.userId, budget: { tokens: -1 } }, '/body/budget/tokens'],
        [
          'budget.tokens 250,001',
          { userId: f.userId, budget: { tokens: 250_001 } },
          '/body/budget/tokens',
        ],
        ['budget unknown field', { userId: f.userId, budget: { words: 10 } }, '/body/budget'],
        ['budget 100', { userId: f.userId, budget: 100 }, '/body/budget'],
        ['context 5', { userId: f.userId, context: 5 }, '/body/context'],
        [
          'context of 16,385 chars',
          { userId: f.userId, context: 'c'.repeat(16_385) },
          '/body/context',
        ],
        ['unknown top-level field', { userId: f.userId, messages: [] }, '/body'],
        ['a bare array', [{ userId: f.userId }], '/body'],
      ];
      for (const [what, body, path] of cases) {
        const res = await refused(
          t,
          f,
          post(startUrl, body),
          400,
          'ENGRAM_VALIDATION_FAILED',
          what,
        );
        assertDetailPath(res, path, what);
      }
    });

    it('POST /v1/sessions/:id/messages: 400 with details[].path for bad messages; nothing written', async () => {
      const many = (n: number) =>
        Array.from({ length: n }, (_, i) => ({ ...ok, content: `m${i}` }));
      const cases: [string, unknown, string][] = [
        ['no messages field', {}, '/body/messages'],
        ['messages []', { messages: [] }, '/body/messages'],
        ['101 messages', { messages: many(101) }, '/body/messages'],
        ['messages an object', { messages: ok }, '/body/messages'],
        ['role "bot"', { messages: [{ ...ok, role: 'bot' }] }, '/body/messages/0/role'],
        ['role "User"', { messages: [{ ...ok, role: 'User' }] }, '/body/messages/0/role'],
        ['no role', { messages: [{ content: 'x' }] }, '/body/messages/0/role'],
        ['content ""', { messages: [{ ...ok, content: '' }] }, '/body/messages/0/content'],
        ['content 5', { messages: [{ ...ok, content: 5 }] }, '/body/messages/0/content'],
        [
          'content of 16,385 chars',
          { messages: [{ ...ok, content: 'a'.repeat(16_385) }] },
          '/body/messages/0/content',
        ],
        ['at "yesterday"', { messages: [{ ...ok, at: 'yesterday' }] }, '/body/messages/0/at'],
        ['at 0', { messages: [{ ...ok, at: 0 }] }, '/body/messages/0/at'],
        [
          'a bad role in the third message',
          { messages: [ok, ok, { ...ok, role: 'bot' }] },
          '/body/messages/2/role',
        ],
        ['unknown field in a message', { messages: [{ ...ok, id: 'x' }] }, '/body/messages/0'],
        ['unknown top-level field', { messages: [ok], userId: f.userId }, '/body'],
        // Rule checks, after the schema: sizes in bytes, blank text, times in the future.
        [
          'content of 18,000 bytes in 6,000 chars',
          { messages: [{ ...ok, content: '€'.repeat(6000) }] },
          '/body/messages/0/content',
        ],
        ['blank content', { messages: [{ ...ok, content: ' \n\t ' }] }, '/body/messages/0/content'],
        ['at in the future', { messages: [{ ...ok, at: future() }] }, '/body/messages/0/at'],
        [
          'at in the future in the fourth of five messages',
          { messages: [ok, ok, ok, { ...ok, at: future() }, ok] },
          '/body/messages/3/at',
        ],
      ];
      for (const [what, body, path] of cases) {
        const res = await refused(
          t,
          f,
          post(messagesUrl(), body),
          400,
          'ENGRAM_VALIDATION_FAILED',
          what,
        );
        assertDetailPath(res, path, what);
      }
    });

    it('400 ENGRAM_INVALID_TEXT for NUL and lone surrogates in the context and in messages', async () => {
      for (const raw of [
        '"a\\u0000b"',
        '"\\u0000"',
        '"a\\ud800b"',
        '"\\udfff"',
        '"\\udc00\\ud800"',
      ]) {
        await refused(
          t,
          f,
          post(startUrl, `{"userId":${JSON.stringify(f.userId)},"context":${raw}}`),
          400,
          'ENGRAM_INVALID_TEXT',
          `${raw} in context`,
        );
        await refused(
          t,
          f,
          post(
            messagesUrl(),
            `{"messages":[{"role":"user","content":"ok"},{"role":"user","content":${raw}}]}`,
          ),
          400,
          'ENGRAM_INVALID_TEXT',
          `${raw} in a message`,
        );
      }
    });

    it('GET /v1/users/:userId/sessions: 400 for bad limits, cursors and parameters', async () => {
      const url = `/v1/users/${f.userId}/sessions`;
      for (const [query, path] of [
        ['limit=0', '/querystring/limit'],
        ['limit=101', '/querystring/limit'],
        ['limit=abc', '/querystring/limit'],
        ['limit=1.5', '/querystring/limit'],
        [`cursor=${'c'.repeat(129)}`, '/querystring/cursor'],
        ['bogus=1', '/querystring'],
      ] as const) {
        const res = await t.call({ method: 'GET', url: `${url}?${query}` });
        assertDetailPath(assertError(res, 400, 'ENGRAM_VALIDATION_FAILED', query), path, query);
      }
      for (const cursor of ['zzz', Buffer.from('v1:nope').toString('base64url'), '']) {
        const res = await t.call({ method: 'GET', url: `${url}?cursor=${cursor}` });
        assertError(res, 400, 'ENGRAM_INVALID_CURSOR', `cursor ${JSON.stringify(cursor)}`);
      }
    });

    it('accepts the limits themselves (another user, so the fixture stays as it was)', async () => {
      const edges: Item[] = [
        { userId: 'u-session-edge', budget: { chars: 0 } },
        { userId: 'u-session-edge', budget: { chars: 1_000_000 } },
        { userId: 'u-session-edge', budget: { tokens: 250_000 } },
        { userId: 'u-session-edge', context: 'c'.repeat(16_384) },
        { userId: 'u'.repeat(128), agentId: 'a'.repeat(128) },
      ];
      let sessionId = '';
      for (const body of edges) {
        const res = await t.call(post(startUrl, body));
        assert.equal(
          res.statusCode,
          201,
          `${JSON.stringify(body).slice(0, 80)}: ${describeRes(res)}`,
        );
        sessionId = (res.json() as { session: { id: string } }).session.id;
      }
      const messages = [
        { messages: Array.from({ length: 100 }, (_, i) => ({ ...ok, content: `m${i}` })) },
        { messages: [{ role: 'assistant', content: 'a'.repeat(16_384) }] },
        {
          messages: [
            {
              role: 'system',
              content: 'said a minute ago',
              at: new Date(Date.now() - 60_000).toISOString(),
            },
          ],
        },
      ];
      for (const body of messages) {
        const res = await t.call(post(`/v1/sessions/${sessionId}/messages`, body));
        assert.equal(res.statusCode, 201, describeRes(res));
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Body limits
// ---------------------------------------------------------------------------------------------

describe('bad input: body limits', () => {
  let small: TestApp;
  let fSmall: Fixture;
  let big: TestApp;
  let fBig: Fixture;

  before(async () => {
    small = await testApp({ env: { ENGRAM_BODY_LIMIT_BYTES: '4096' } });
    fSmall = await fixture(small, 'u-limit');
    big = await testApp();
    fBig = await fixture(big, 'u-limit');
  });
  after(async () => {
    await small.close();
    await big.close();
  });

  for (const route of BODY_PARSING) {
    it(`${route.name}: 413 ENGRAM_BODY_TOO_LARGE over a 4 KiB limit; nothing written`, async () => {
      const payload = JSON.stringify(bodyWith(route, fSmall, { content: 'a'.repeat(5000) }));
      assert.ok(payload.length > 4096);
      await refused(
        small,
        fSmall,
        request(route, fSmall, { headers: JSON_TYPE, payload }),
        413,
        'ENGRAM_BODY_TOO_LARGE',
        `${payload.length} bytes`,
      );
      // Authentication comes first: no key, no 413.
      const anonymous = await small.app.inject(
        request(route, fSmall, { headers: JSON_TYPE, payload }),
      );
      assertError(anonymous, 401, 'ENGRAM_UNAUTHORIZED', 'oversized without a key');
    });
  }

  it('POST /v1/memories: the default limit is 1 MiB: 1,048,577 bytes is a 413, 1,048,576 is not', async () => {
    const sized = (bytes: number) => {
      const shell = JSON.stringify({ userId: fBig.userId, content: '' });
      return JSON.stringify({ userId: fBig.userId, content: 'a'.repeat(bytes - shell.length) });
    };
    const over = sized(1_048_577);
    assert.equal(Buffer.byteLength(over), 1_048_577);
    await refused(
      big,
      fBig,
      { method: 'POST', url: '/v1/memories', headers: JSON_TYPE, payload: over },
      413,
      'ENGRAM_BODY_TOO_LARGE',
      '1 MiB + 1',
    );
    // At the limit the body is read, then refused for its content size instead.
    const at = sized(1_048_576);
    assert.equal(Buffer.byteLength(at), 1_048_576);
    const body = await refused(
      big,
      fBig,
      { method: 'POST', url: '/v1/memories', headers: JSON_TYPE, payload: at },
      400,
      'ENGRAM_VALIDATION_FAILED',
      'exactly 1 MiB',
    );
    assertDetailPath(body, '/body/content', 'exactly 1 MiB');
  });
});

// ---------------------------------------------------------------------------------------------
// Another tenant's ids
// ---------------------------------------------------------------------------------------------

describe("bad input: another tenant's ids", () => {
  let t: TestApp;
  let f: Fixture;
  let asOther: (o: InjectOptions) => Promise<Res>;

  before(async () => {
    t = await testApp();
    f = await fixture(t, 'u-tenant');
    asOther = (o) =>
      t.call({ ...o, headers: { ...o.headers, authorization: `Bearer ${t.otherKey}` } });
  });
  after(async () => {
    await t.close();
  });

  it("GET/PATCH/DELETE/restore/history of acme memories with other's key: 404, never 403, never data", async () => {
    const cases: [string, InjectOptions][] = [
      ['GET', { method: 'GET', url: `/v1/memories/${f.liveId}` }],
      ['GET deleted', { method: 'GET', url: `/v1/memories/${f.deletedId}` }],
      [
        'PATCH',
        {
          method: 'PATCH',
          url: `/v1/memories/${f.liveId}`,
          headers: JSON_TYPE,
          payload: '{"content":"stolen"}',
        },
      ],
      [
        'PATCH with If-Match (no 412 that would reveal a version)',
        {
          method: 'PATCH',
          url: `/v1/memories/${f.liveId}`,
          headers: { ...JSON_TYPE, 'if-match': '"999"' },
          payload: '{"pinned":true}',
        },
      ],
      ['DELETE', { method: 'DELETE', url: `/v1/memories/${f.liveId}` }],
      [
        'DELETE with If-Match',
        { method: 'DELETE', url: `/v1/memories/${f.liveId}`, headers: { 'if-match': '1' } },
      ],
      ['restore', { method: 'POST', url: `/v1/memories/${f.deletedId}/restore` }],
      [
        'restore of a live one (no 409)',
        { method: 'POST', url: `/v1/memories/${f.liveId}/restore` },
      ],
      ['history', { method: 'GET', url: `/v1/memories/${f.liveId}/history` }],
      ['history of a deleted one', { method: 'GET', url: `/v1/memories/${f.deletedId}/history` }],
    ];
    for (const [what, options] of cases) {
      const before = await f.snapshot();
      const res = await asOther(options);
      assertError(res, 404, 'ENGRAM_MEMORY_NOT_FOUND', what);
      for (const secret of ['live memory', 'deleted memory', 'u-tenant', '"version"']) {
        assert.ok(!res.body.includes(secret), `${what} leaks ${secret}: ${res.body}`);
      }
      assert.deepEqual(await f.snapshot(), before, `${what}: the store changed`);
    }
    // And acme still sees its memory, unchanged.
    const mine = await t.call({ method: 'GET', url: `/v1/memories/${f.liveId}` });
    assert.equal(mine.statusCode, 200);
    assert.equal((mine.json() as { version: number }).version, 1);
  });

  it("session routes on acme's session with other's key: 404, never data, nothing changed", async () => {
    const cases: [string, InjectOptions][] = [
      ['GET', { method: 'GET', url: `/v1/sessions/${f.sessionId}` }],
      [
        'messages',
        {
          method: 'POST',
          url: `/v1/sessions/${f.sessionId}/messages`,
          headers: JSON_TYPE,
          payload: '{"messages":[{"role":"user","content":"planted"}]}',
        },
      ],
      ['touch', { method: 'POST', url: `/v1/sessions/${f.sessionId}/touch` }],
      ['end', { method: 'POST', url: `/v1/sessions/${f.sessionId}/end` }],
    ];
    for (const [what, options] of cases) {
      const before = await f.snapshot();
      const res = await asOther(options);
      assertError(res, 404, 'ENGRAM_SESSION_NOT_FOUND', what);
      assert.ok(!res.body.includes('u-tenant'), `${what} leaks the user: ${res.body}`);
      assert.deepEqual(await f.snapshot(), before, `${what}: the store changed`);
    }
    const list = await asOther({ method: 'GET', url: `/v1/users/${f.userId}/sessions` });
    assert.equal(list.statusCode, 200, describeRes(list));
    assert.deepEqual(list.json(), { items: [], nextCursor: null });
    const mine = await t.call({ method: 'GET', url: `/v1/sessions/${f.sessionId}` });
    assert.equal(mine.statusCode, 200);
    assert.equal((mine.json() as { session: { state: string } }).session.state, 'active');
  });

  it("list and export of acme's user id with other's key are empty", async () => {
    const list = await asOther({ method: 'GET', url: `/v1/users/${f.userId}/memories` });
    assert.equal(list.statusCode, 200, describeRes(list));
    assert.deepEqual(list.json(), { items: [], nextCursor: null });
    const exported = await asOther({ method: 'GET', url: `/v1/users/${f.userId}/export` });
    assert.equal(exported.statusCode, 200, describeRes(exported));
    assert.equal(exported.body, '');
    // Whereas acme's own export has the live memory.
    const own = await t.call({ method: 'GET', url: `/v1/users/${f.userId}/export` });
    assert.equal(own.statusCode, 200);
    assert.equal(own.body.trim().split('\n').length, 1);
  });

  it("erasing acme's user id with other's key deletes nothing of acme's", async () => {
    const before = await f.snapshot();
    const res = await asOther({ method: 'DELETE', url: `/v1/users/${f.userId}` });
    assert.equal(res.statusCode, 200, describeRes(res));
    assert.deepEqual(res.json(), { userId: f.userId, deleted: 0 });
    assert.deepEqual(await f.snapshot(), before);
    assert.ok(await t.ctx.store.getMemory('acme', f.liveId));
    const mine = await t.call({ method: 'GET', url: `/v1/memories/${f.liveId}` });
    assert.equal(mine.statusCode, 200);
  });

  it("an Idempotency-Key used by acme does not replay acme's answer to other", async () => {
    const headers = { ...JSON_TYPE, 'idempotency-key': 'shared-key-1' };
    const payload = JSON.stringify({ userId: 'u-shared', content: 'same body' });
    const first = await t.call({ method: 'POST', url: '/v1/memories', headers, payload });
    assert.equal(first.statusCode, 201);
    const second = await asOther({ method: 'POST', url: '/v1/memories', headers, payload });
    assert.equal(second.statusCode, 201, describeRes(second));
    assert.equal(second.headers['idempotent-replayed'], undefined);
    assert.notEqual((second.json() as { id: string }).id, (first.json() as { id: string }).id);
  });
});

// ---------------------------------------------------------------------------------------------
// The table itself: each valid request succeeds, so each refusal above is due to the bad part
// ---------------------------------------------------------------------------------------------

describe('bad input: the valid requests of the route table succeed', () => {
  let t: TestApp;
  let f: Fixture;
  before(async () => {
    t = await testApp();
    f = await fixture(t, 'u-valid');
  });
  after(async () => {
    await t.close();
  });

  for (const route of ROUTES) {
    it(`${route.name} → ${route.okStatus}`, async () => {
      const res = await t.call(request(route, f));
      assert.equal(res.statusCode, route.okStatus, describeRes(res));
    });
  }
  it('write routes accept a valid Idempotency-Key (the header itself is fine)', async () => {
    const g = await fixture(t, 'u-valid-2');
    for (const route of WRITE_ROUTES) {
      const res = await t.call(
        request(route, g, {
          headers: { 'idempotency-key': `ok-${route.name.replaceAll(/\W/g, '')}` },
        }),
      );
      assert.equal(res.statusCode, route.okStatus, `${route.name}: ${describeRes(res)}`);
    }
  });

  it('the table lists every /v1 route of the OpenAPI document, and only those', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    const paths = (res.json() as { paths: Record<string, Record<string, unknown>> }).paths;
    const documented = Object.entries(paths)
      .filter(([path]) => path.startsWith('/v1/'))
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    assert.deepEqual(documented, ROUTES.map((r) => `${r.method} ${r.path}`).sort());
    assert.equal(PARAM_ROUTES.length, 14);
    assert.equal(BODY_ROUTES.length, 6);
  });
});

// ---------------------------------------------------------------------------------------------
// Over a real socket: oversized headers, slow bodies
// ---------------------------------------------------------------------------------------------

interface RawAnswer {
  status: number;
  head: string;
  body: string;
  closed: boolean;
}

/** Writes raw bytes to the server and collects the answer until the socket closes (or waitMs). */
function rawHttp(port: number, text: string, waitMs: number): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      const split = data.indexOf('\r\n\r\n');
      const head = split === -1 ? data : data.slice(0, split);
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0),
        head,
        body: split === -1 ? '' : data.slice(split + 4),
        closed,
      });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      finish();
    }, waitMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      data += chunk;
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET') reject(err);
    });
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.write(text);
  });
}

describe('bad input: over a real socket', () => {
  let t: TestApp;
  let f: Fixture;
  let port: number;

  before(async () => {
    t = await testApp({ env: { ENGRAM_REQUEST_TIMEOUT_MS: '500' } });
    f = await fixture(t, 'u-socket');
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as { port: number }).port;
  });
  after(async () => {
    await t.close();
  });

  it('a 20 KB header: 431 with ENGRAM_HEADERS_TOO_LARGE, and the connection is closed', async () => {
    for (const path of ['/livez', '/v1/memories', `/v1/users/${f.userId}/memories`]) {
      const answer = await rawHttp(
        port,
        `GET ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${t.key}\r\n` +
          `X-Padding: ${'a'.repeat(20_000)}\r\n\r\n`,
        5_000,
      );
      assert.equal(answer.status, 431, answer.head);
      assert.match(answer.head, /content-type: application\/json/i);
      const body = JSON.parse(answer.body) as ErrorJson;
      assert.equal(body.error.code, 'ENGRAM_HEADERS_TOO_LARGE');
      assert.ok(body.error.requestId.length > 0);
      assert.equal(answer.closed, true);
    }
    // The server still answers afterwards.
    const ok = await rawHttp(
      port,
      'GET /livez HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
      5_000,
    );
    assert.equal(ok.status, 200, ok.head);
  });

  it('a slow body: 408 ENGRAM_REQUEST_TIMEOUT, the socket is closed, nothing written', async () => {
    const before = await f.snapshot();
    const started = Date.now();
    const answer = await rawHttp(
      port,
      `POST /v1/memories HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${t.key}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"userId":',
      5_000,
    );
    assert.equal(answer.status, 408, answer.head);
    const body = JSON.parse(answer.body) as ErrorJson;
    assert.equal(body.error.code, 'ENGRAM_REQUEST_TIMEOUT');
    assert.ok(body.error.requestId.length > 0);
    assert.equal(answer.closed, true, 'the server must close the connection');
    assert.ok(Date.now() - started < 4_000, `closed after ${Date.now() - started} ms`);
    assert.deepEqual(await f.snapshot(), before);
  });
});

// ---------------------------------------------------------------------------------------------
// Property: arbitrary strings never cause a 5xx, and every error has a catalog code
// ---------------------------------------------------------------------------------------------

describe('bad input: arbitrary strings (property)', () => {
  let t: TestApp;
  before(async () => {
    t = await testApp();
  });
  after(async () => {
    await t.close();
  });

  const char = fc.oneof(
    { weight: 6, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
    { weight: 3, arbitrary: fc.constantFrom(...'abcxyz0189_.:-@+=|') },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '\u0000',
        '%',
        '/',
        '?',
        '#',
        '&',
        '=',
        ' ',
        '\u202E',
        '\u0301',
        '😀',
      ),
    },
  );
  const text = fc.string({ unit: char, maxLength: 40 });
  const catalogued = (res: Res, what: string) => {
    assert.ok(res.statusCode < 500, `${what}: ${describeRes(res)}`);
    if (res.statusCode >= 400) assertCatalog4xx(res, what);
  };
  const expectedFor = (s: string, valid: boolean): number | ErrorCode => {
    if (!s.isWellFormed()) return 'ENGRAM_BAD_URL';
    if (s.includes('\u0000')) return 'ENGRAM_INVALID_TEXT';
    return valid ? 200 : 'ENGRAM_VALIDATION_FAILED';
  };
  const check = (res: Res, expected: number | ErrorCode, what: string) => {
    catalogued(res, what);
    if (typeof expected === 'number')
      assert.equal(res.statusCode, expected, `${what}: ${describeRes(res)}`);
    else assertError(res, 400, expected, what);
  };

  it('as the `kind` query parameter', async () => {
    await fc.assert(
      fc.asyncProperty(text, async (s) => {
        const res = await t.call({
          method: 'GET',
          url: `/v1/users/u1/memories?kind=${percentEncode(s)}`,
        });
        check(
          res,
          expectedFor(s, /^[a-z][a-z0-9_.:-]{0,63}$/.test(s)),
          `kind=${JSON.stringify(s)}`,
        );
      }),
      { numRuns: 200 },
    );
  });

  it('as the :userId path segment', async () => {
    await fc.assert(
      fc.asyncProperty(text, async (s) => {
        const res = await t.call({ method: 'GET', url: `/v1/users/${percentEncode(s)}/memories` });
        const what = `userId=${JSON.stringify(s)}`;
        // "." and ".." are dot segments: the URL is normalised before routing.
        if (s === '.' || s === '..') assertError(res, 404, 'ENGRAM_ROUTE_NOT_FOUND', what);
        else check(res, expectedFor(s, /^[A-Za-z0-9_.:@+=|-]{1,128}$/.test(s)), what);
      }),
      { numRuns: 200 },
    );
  });

  it('as memory content', async () => {
    await fc.assert(
      fc.asyncProperty(text, async (s) => {
        const res = await t.call({
          method: 'POST',
          url: '/v1/memories',
          headers: JSON_TYPE,
          payload: JSON.stringify({ userId: 'u-prop', content: s }),
        });
        const what = `content=${JSON.stringify(s)}`;
        catalogued(res, what);
        if (!s.isWellFormed() || s.includes('\u0000')) {
          assertError(res, 400, 'ENGRAM_INVALID_TEXT', what);
        } else if (s.trim().length === 0) {
          assertError(res, 400, 'ENGRAM_VALIDATION_FAILED', what);
        } else {
          assert.equal(res.statusCode, 201, `${what}: ${describeRes(res)}`);
          assert.equal((res.json() as { content: string }).content, s);
        }
      }),
      { numRuns: 200 },
    );
  });
});
