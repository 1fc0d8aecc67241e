import { EngramError } from '../errors.ts';
import { MEMORY_ID_PATTERN } from '../memory/ids.ts';

const ID = new RegExp(MEMORY_ID_PATTERN);

/** An opaque page cursor for the memory id to continue below. */
export function encodeCursor(beforeId: string): string {
  return Buffer.from(`v1:${beforeId}`).toString('base64url');
}

/** The memory id of a cursor; ENGRAM_INVALID_CURSOR when it is not one of ours. */
export function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const id = text.startsWith('v1:') ? text.slice(3) : '';
  if (!ID.test(id)) throw new EngramError('ENGRAM_INVALID_CURSOR');
  return id;
}

/**
 * The version in an If-Match header (`3`, `"3"` or `W/"3"`), or undefined when absent or `*`
 * (any current version).
 */
export function expectedVersion(ifMatch: string | string[] | undefined): number | undefined {
  if (ifMatch === undefined || (typeof ifMatch === 'string' && ifMatch.trim() === '*')) {
    return undefined;
  }
  const match = typeof ifMatch === 'string' ? /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(ifMatch) : null;
  if (!match?.[1]) throw new EngramError('ENGRAM_INVALID_IF_MATCH');
  return Number(match[1]);
}
