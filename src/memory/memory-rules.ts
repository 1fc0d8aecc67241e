import { EngramError, type ErrorDetail } from '../errors.ts';

/** Limits of one memory, enforced on every write. */
export const LIMITS = {
  /** Content size in UTF-8 bytes (16 KiB). */
  contentBytes: 16_384,
  tags: 32,
  tagLength: 64,
  kindLength: 64,
  /** Nesting depth of `metadata` (the object itself is depth 1). */
  metadataDepth: 5,
  /** Keys across every level of `metadata`. */
  metadataKeys: 128,
  /** Serialized size of `metadata` in bytes. */
  metadataBytes: 8_192,
  /** Clock skew tolerated on a client-set `createdAt`; later than this is "in the future". */
  createdAtSkewMs: 60_000,
  batchItems: 1_000,
  listLimit: 500,
  /** Page size of a listing that names none (also what warming loads). */
  defaultPage: 50,
} as const;

/** Walks a metadata value; returns its depth and key count. */
function measure(value: unknown, depth: number): { depth: number; keys: number } {
  if (value === null || typeof value !== 'object') return { depth, keys: 0 };
  let maxDepth = depth;
  let keys = 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  if (!Array.isArray(value)) keys += Object.keys(value).length;
  for (const child of children) {
    // A scalar is a value of this level, not a level of its own: `{a: 1}` is 1 level deep.
    if (child === null || typeof child !== 'object') continue;
    const m = measure(child, depth + 1);
    if (m.depth > maxDepth) maxDepth = m.depth;
    keys += m.keys;
  }
  return { depth: maxDepth, keys };
}

/** Problems of a metadata object against {@link LIMITS}, as details under `path`. */
export function metadataProblems(metadata: unknown, path: string): ErrorDetail[] {
  const { depth, keys } = measure(metadata, 1);
  const problems: ErrorDetail[] = [];
  if (depth > LIMITS.metadataDepth) {
    problems.push({ path, message: `must be nested at most ${LIMITS.metadataDepth} levels deep` });
  }
  if (keys > LIMITS.metadataKeys) {
    problems.push({ path, message: `must have at most ${LIMITS.metadataKeys} keys in all` });
  }
  if (Buffer.byteLength(JSON.stringify(metadata)) > LIMITS.metadataBytes) {
    problems.push({ path, message: `must serialize to at most ${LIMITS.metadataBytes} bytes` });
  }
  return problems;
}

/** Problems of a memory's content: not blank, at most {@link LIMITS.contentBytes} bytes. */
export function contentProblems(content: string, path: string): ErrorDetail[] {
  if (content.trim().length === 0) return [{ path, message: 'must not be blank' }];
  if (Buffer.byteLength(content) > LIMITS.contentBytes) {
    return [{ path, message: `must be at most ${LIMITS.contentBytes} bytes of UTF-8` }];
  }
  return [];
}

/** Parses an ISO-8601 timestamp already checked by the schema's `date-time` format. */
export function parseTime(text: string): number {
  return Date.parse(text);
}

/** Throws ENGRAM_VALIDATION_FAILED when `problems` is not empty. */
export function rejectIfAny(problems: ErrorDetail[]): void {
  if (problems.length > 0) throw new EngramError('ENGRAM_VALIDATION_FAILED', { details: problems });
}

/** Sorted, de-duplicated tags. */
export function normalizeTags(tags: readonly string[]): string[] {
  return [...new Set(tags)].sort();
}
