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

/** A short hash of normalized parameters: equal parameters, equal hash, whatever their order. */
export function paramsHash(params: unknown): string {
  return createHash('sha256').update(canonicalJson(params)).digest('base64url').slice(0, 22);
}

/** The key of a user-scoped query (`kind`: list, search, …) with its parameters. */
export function queryKey(kind: string, tenant: string, userId: string, params: unknown): string {
  return `${kind}/${tenant}/${userId}/${paramsHash(params)}`;
}
