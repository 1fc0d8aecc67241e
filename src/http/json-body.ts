import { isUtf8 } from 'node:buffer';
import { EngramError } from '../errors.ts';

/** Deepest nesting of arrays and objects accepted in a JSON body. */
export const MAX_JSON_DEPTH = 32;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/**
 * The nesting depth of a JSON text, from one pass over its bytes, before any parsing: a body
 * of 100,000 `[` is refused without recursion. Brackets inside strings are skipped.
 */
export function jsonDepth(bytes: Uint8Array): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      if (++depth > max) max = depth;
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) depth--;
  }
  return max;
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor']);

/** Throws ENGRAM_INVALID_TEXT when a string holds NUL or an unpaired surrogate. */
export function checkText(text: string, path: string): void {
  if (text.includes('\u0000') || !text.isWellFormed()) {
    throw new EngramError('ENGRAM_INVALID_TEXT', {
      details: [{ path, message: 'contains NUL or an unpaired surrogate' }],
    });
  }
}

/** Rejects prototype keys and invalid text anywhere in a parsed JSON value. */
function checkValue(value: unknown, path: string): void {
  if (typeof value === 'string') {
    checkText(value, path);
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) checkValue(value[i], `${path}/${i}`);
  } else if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.has(key)) {
        throw new EngramError('ENGRAM_FORBIDDEN_KEY', {
          details: [{ path: `${path}/${key}`, message: 'forbidden key' }],
        });
      }
      checkText(key, `${path}/${key}`);
      checkValue((value as Record<string, unknown>)[key], `${path}/${key}`);
    }
  }
}

/**
 * Parses a JSON request body strictly: valid UTF-8, nesting at most {@link MAX_JSON_DEPTH},
 * no `__proto__`/`constructor` keys, no NUL or unpaired surrogates in any string.
 */
export function parseJsonBody(bytes: Buffer): unknown {
  if (bytes.length === 0) {
    throw new EngramError('ENGRAM_MALFORMED_JSON', { message: 'The body is empty.' });
  }
  if (!isUtf8(bytes)) throw new EngramError('ENGRAM_INVALID_ENCODING');
  if (jsonDepth(bytes) > MAX_JSON_DEPTH) throw new EngramError('ENGRAM_JSON_TOO_DEEP');
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new EngramError('ENGRAM_MALFORMED_JSON');
  }
  checkValue(value, '/body');
  return value;
}

/** Whether a Content-Type's charset parameter, if any, is UTF-8. */
export function isUtf8ContentType(contentType: string | undefined): boolean {
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? '')?.[1];
  return charset === undefined || /^utf-?8$/i.test(charset);
}
