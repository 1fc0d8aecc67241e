import type { ApiKeyRow, IdempotencyRecord, MemoryRow } from '../../memory/memory-types.ts';

/** A result row as pg returns it (BIGINT already parsed to a number, JSONB to a value). */
export type Raw = Record<string, unknown>;

/** The columns of `memories`, in the order the inserts and selects use. */
export const MEMORY_COLUMNS =
  'tenant, id, user_id, agent_id, session_id, content, kind, tags, metadata, importance, pinned, ' +
  'created_at, updated_at, expires_at, deleted_at, access_count, last_accessed_at, version';

/**
 * Reads a JSON array of {@link MemoryRow} objects (parameter `$1`) as rows of `memories`
 * columns, so that a whole batch is inserted by one statement with one parameter.
 */
export const MEMORY_RECORDSET = `SELECT tenant, id, "userId", "agentId", "sessionId", content, kind,
    tags, metadata, importance, pinned, "createdAt", "updatedAt", "expiresAt", "deletedAt",
    "accessCount", "lastAccessedAt", version
  FROM jsonb_to_recordset($1::jsonb) AS r(tenant text, id text, "userId" text, "agentId" text,
    "sessionId" text, content text, kind text, tags jsonb, metadata jsonb, importance float8,
    pinned boolean, "createdAt" bigint, "updatedAt" bigint, "expiresAt" bigint,
    "deletedAt" bigint, "accessCount" integer, "lastAccessedAt" bigint, version integer)`;

/** Maps a `memories` row to a {@link MemoryRow}. */
export function toRow(r: Raw): MemoryRow {
  return {
    tenant: r.tenant as string,
    id: r.id as string,
    userId: r.user_id as string,
    agentId: (r.agent_id as string | null) ?? null,
    sessionId: (r.session_id as string | null) ?? null,
    content: r.content as string,
    kind: r.kind as string,
    tags: r.tags as string[],
    metadata: r.metadata as MemoryRow['metadata'],
    importance: r.importance as number,
    pinned: r.pinned as boolean,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
    expiresAt: (r.expires_at as number | null) ?? null,
    deletedAt: (r.deleted_at as number | null) ?? null,
    accessCount: r.access_count as number,
    lastAccessedAt: (r.last_accessed_at as number | null) ?? null,
    version: r.version as number,
  };
}

/** Maps an `idempotency_keys` row to an {@link IdempotencyRecord}. */
export function toIdem(r: Raw): IdempotencyRecord {
  return {
    tenant: r.tenant as string,
    key: r.key as string,
    fingerprint: r.fingerprint as string,
    userId: (r.user_id as string | null) ?? null,
    status: r.status as number,
    body: r.body as string,
    createdAt: r.created_at as number,
    expiresAt: r.expires_at as number,
  };
}

/** Maps an `api_keys` row to an {@link ApiKeyRow}. */
export function toKey(r: Raw): ApiKeyRow {
  return {
    id: r.id as string,
    tenant: r.tenant as string,
    hash: r.hash as Buffer,
    label: (r.label as string | null) ?? null,
    createdAt: r.created_at as number,
    revokedAt: (r.revoked_at as number | null) ?? null,
  };
}
