import { createHash } from 'node:crypto';

// Tenant names and client ids cannot contain '/', so these keys cannot collide.

/** The scope of a tenant's user: every write to the user's memories moves its version. */
export function userScope(tenant: string, userId: string): string {
  return `${tenant}/${userId}`;
}

/** The key of one memory's response. */
export function memoryKey(tenant: string, id: string): string {
  return `m/${tenant}/${id}`;
}

/** Canonical JSON: object keys sorted, undefined members dropped, at every level. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** Normalized parameters up to this length are used as they are; longer ones are hashed. */
const VERBATIM_MAX = 96;

/**
 * A key part for normalized parameters: equal parameters give equal parts whatever their
 * order. Short ones are kept verbatim (no collision possible, no hashing cost on the hot
 * path); longer ones become 128 bits of SHA-256, marked with `#` so the two cannot meet.
 */
export function paramsHash(params: unknown): string {
  // A flat array of scalars and string arrays is already canonical: native JSON is enough.
  const text = Array.isArray(params) ? JSON.stringify(params) : canonicalJson(params);
  if (text.length <= VERBATIM_MAX) return text;
  return `#${createHash('sha256').update(text).digest('base64url').slice(0, 22)}`;
}

/** The key of a user-scoped query (`kind`: list, search, …) with its parameters. */
export function queryKey(kind: string, tenant: string, userId: string, params: unknown): string {
  return `${kind}/${tenant}/${userId}/${paramsHash(params)}`;
}
