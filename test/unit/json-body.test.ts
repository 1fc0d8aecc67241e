import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { EngramError } from '../../src/errors.ts';
import { isUtf8ContentType, jsonDepth, parseJsonBody } from '../../src/http/json-body.ts';

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof EngramError) return err.code;
    throw err;
  }
  return 'ok';
};

describe('jsonDepth', () => {
  it('counts nesting and ignores brackets inside strings and escapes', () => {
    assert.equal(jsonDepth(Buffer.from('{}')), 1);
    assert.equal(jsonDepth(Buffer.from('[[{"a":"[[[\\"{{"}]]')), 3);
    assert.equal(jsonDepth(Buffer.from('"plain"')), 0);
  });
  it('agrees with the real depth of generated JSON', () => {
    const depthOf = (v: unknown): number =>
      v !== null && typeof v === 'object'
        ? 1 + Math.max(0, ...Object.values(v as object).map(depthOf))
        : 0;
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        assert.equal(jsonDepth(Buffer.from(JSON.stringify(value))), depthOf(value));
      }),
    );
  });
});

describe('parseJsonBody', () => {
  it('parses ordinary JSON', () => {
    assert.deepEqual(parseJsonBody(Buffer.from('{"a":[1,"é"]}')), { a: [1, 'é'] });
  });
  it('refuses 100,000 levels of nesting without recursing', () => {
    assert.equal(
      codeOf(() => parseJsonBody(Buffer.from('['.repeat(100_000)))),
      'ENGRAM_JSON_TOO_DEEP',
    );
  });
  it('refuses prototype keys at any depth, escaped or not', () => {
    assert.equal(
      codeOf(() => parseJsonBody(Buffer.from('{"__proto__":{}}'))),
      'ENGRAM_FORBIDDEN_KEY',
    );
    assert.equal(
      codeOf(() => parseJsonBody(Buffer.from('{"a":[{"\\u005f_proto__":1}]}'))),
      'ENGRAM_FORBIDDEN_KEY',
    );
    assert.equal(
      codeOf(() => parseJsonBody(Buffer.from('{"m":{"constructor":1}}'))),
      'ENGRAM_FORBIDDEN_KEY',
    );
  });
  it('refuses invalid UTF-8, NUL and lone surrogates', () => {
    assert.equal(
      codeOf(() => parseJsonBody(Buffer.from([0x22, 0xff, 0x22]))),
      'ENGRAM_INVALID_ENCODING',
    );
    assert.equal(
      codeOf(() => parseJsonBody(Buffer.from('{"a":"x\\u0000"}'))),
      'ENGRAM_INVALID_TEXT',
    );
    assert.equal(
      codeOf(() => parseJsonBody(Buffer.from('{"a":"\\ud800"}'))),
      'ENGRAM_INVALID_TEXT',
    );
    assert.equal(
      codeOf(() => parseJsonBody(Buffer.from('{"\\udc00":1}'))),
      'ENGRAM_INVALID_TEXT',
    );
    assert.equal(
      codeOf(() => parseJsonBody(Buffer.from('{"a":"😀"}'))),
      'ok',
    );
  });
  it('refuses malformed and empty bodies', () => {
    assert.equal(
      codeOf(() => parseJsonBody(Buffer.from('{"a":'))),
      'ENGRAM_MALFORMED_JSON',
    );
    assert.equal(
      codeOf(() => parseJsonBody(Buffer.alloc(0))),
      'ENGRAM_MALFORMED_JSON',
    );
  });
  it('never throws anything but an EngramError on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        codeOf(() => parseJsonBody(Buffer.from(bytes)));
      }),
    );
  });
});

describe('isUtf8ContentType', () => {
  it('accepts no charset or UTF-8 only', () => {
    assert.equal(isUtf8ContentType('application/json'), true);
    assert.equal(isUtf8ContentType('application/json; charset=UTF-8'), true);
    assert.equal(isUtf8ContentType('application/json;charset="utf8"'), true);
    assert.equal(isUtf8ContentType('application/json; charset=latin1'), false);
  });
});
