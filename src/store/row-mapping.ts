import type {
  AccessDelta,
  ActivityDelta,
  ApiKeyRow,
  IdempotencyRecord,
  ListFilter,
  MemoryRow,
} from '../memory/memory-types.ts';
import type {
  SessionActivity,
  SessionRow,
  TimeoutBasis,
  TimeoutModelRow,
} from '../sessions/session-types.ts';

/** A result row as a driver returns it. */
export type Raw = Record<string, unknown>;

/** The columns of `memories`, in the order the inserts and selects use. */
export const MEMORY_COLUMNS =
  'tenant, id, user_id, agent_id, session_id, content, kind, tags, metadata, importance, pinned, ' +
  'created_at, updated_at, expires_at, deleted_at, access_count, last_accessed_at, version, ' +
  'embedding';

/** Whether this platform stores a Float32Array's elements little-endian (all mainstream ones). */
const LITTLE_ENDIAN = new Uint8Array(new Float32Array([-0]).buffer)[3] === 0x80;

/** An embedding as SQLite stores it: its Float32 values as little-endian bytes. */
export function embeddingToBlob(embedding: Float32Array | null): Buffer | null {
  if (!embedding) return null;
  if (LITTLE_ENDIAN) {
    return Buffer.from(embedding.buffer, embedding.byteOffset, embedding.byteLength);
  }
  const blob = Buffer.allocUnsafe(embedding.length * 4);
  for (let i = 0; i < embedding.length; i++) blob.writeFloatLE(embedding[i] ?? 0, i * 4);
  return blob;
}

/** An embedding as PostgreSQL takes it (`real[]`): a plain array, exact for every Float32. */
export const embeddingToArray = (embedding: Float32Array | null): number[] | null =>
  embedding ? Array.from(embedding) : null;

/**
 * Reads a stored embedding: SQLite's little-endian bytes (copied into a fresh, aligned buffer:
 * a driver's Buffer may sit at any offset of a shared pool) or PostgreSQL's `real[]`.
 */
export function toEmbedding(value: unknown): Float32Array | null {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return Float32Array.from(value as number[]);
  if (!(value instanceof Uint8Array)) throw new TypeError('an embedding must be bytes or an array');
  if (value.byteLength % 4 !== 0) throw new TypeError('an embedding blob is not Float32 values');
  const out = new Float32Array(value.byteLength / 4);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(value);
  } else {
    const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return out;
}

/** A memory as a history snapshot stores it: everything but the embedding. */
export function snapshotJson(row: MemoryRow): string {
  const { embedding: _embedding, ...rest } = row;
  return JSON.stringify(rest);
}

/** A memory read back from a history snapshot (whose JSON never holds the embedding). */
export function fromSnapshot(snapshot: unknown): MemoryRow {
  const parsed = (typeof snapshot === 'string' ? JSON.parse(snapshot) : snapshot) as MemoryRow;
  return { ...parsed, embedding: null };
}

// SQLite hands JSON columns back as text and booleans as 0/1; PostgreSQL as values.
const json = <T>(value: unknown): T => (typeof value === 'string' ? JSON.parse(value) : value) as T;

// Most memories have no tags and no metadata: they share one frozen empty array and object
// (a tenth of an indexed memory's heap; frozen, so a change in place fails loudly).
const NO_TAGS = Object.freeze([]) as unknown as string[];
const NO_METADATA = Object.freeze({}) as MemoryRow['metadata'];
const tagsOf = (value: unknown): string[] => (value === '[]' ? NO_TAGS : json<string[]>(value));
const metadataOf = (value: unknown): MemoryRow['metadata'] =>
  value === '{}' ? NO_METADATA : json<MemoryRow['metadata']>(value);

/** Maps a `memories` row of either dialect to a {@link MemoryRow}. */
export function toRow(r: Raw): MemoryRow {
  return {
    tenant: r.tenant as string,
    id: r.id as string,
    userId: r.user_id as string,
    agentId: (r.agent_id as string | null) ?? null,
    sessionId: (r.session_id as string | null) ?? null,
    content: r.content as string,
    kind: r.kind as string,
    tags: tagsOf(r.tags),
    metadata: metadataOf(r.metadata),
    importance: r.importance as number,
    pinned: r.pinned === true || r.pinned === 1,
    createdAt: r.created_at as number,
    updatedAt: r.updated_at as number,
    expiresAt: (r.expires_at as number | null) ?? null,
    deletedAt: (r.deleted_at as number | null) ?? null,
    accessCount: r.access_count as number,
    lastAccessedAt: (r.last_accessed_at as number | null) ?? null,
    version: r.version as number,
    embedding: toEmbedding(r.embedding),
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

/** The columns of `sessions`, in the order the inserts, selects and RETURNING clauses use. */
export const SESSION_COLUMNS =
  'tenant, id, user_id, agent_id, state, created_at, last_activity_at, expires_at, ended_at, ' +
  'timeout_ms, timeout_basis, message_count, summary_id';

/** A session's values in {@link SESSION_COLUMNS} order, the basis as JSON text. */
export function sessionValues(s: SessionRow): unknown[] {
  return [
    s.tenant,
    s.id,
    s.userId,
    s.agentId,
    s.state,
    s.createdAt,
    s.lastActivityAt,
    s.expiresAt,
    s.endedAt,
    s.timeoutMs,
    JSON.stringify(s.timeoutBasis),
    s.messageCount,
    s.summaryId,
  ];
}

/** Maps a `sessions` row of either dialect to a {@link SessionRow}. */
export function toSession(r: Raw): SessionRow {
  return {
    tenant: r.tenant as string,
    id: r.id as string,
    userId: r.user_id as string,
    agentId: (r.agent_id as string | null) ?? null,
    state: r.state as SessionRow['state'],
    createdAt: r.created_at as number,
    lastActivityAt: r.last_activity_at as number,
    expiresAt: r.expires_at as number,
    endedAt: (r.ended_at as number | null) ?? null,
    timeoutMs: r.timeout_ms as number,
    timeoutBasis: json<TimeoutBasis>(r.timeout_basis),
    messageCount: r.message_count as number,
    summaryId: (r.summary_id as string | null) ?? null,
  };
}

/** Maps a `timeout_models` row to a {@link TimeoutModelRow}. */
export function toTimeoutModel(r: Raw): TimeoutModelRow {
  return {
    tenant: r.tenant as string,
    userId: r.user_id as string,
    model: r.model as string,
    updatedAt: r.updated_at as number,
  };
}

/**
 * Timeout models to upsert: the last one given per user kept (as one-by-one upserts would),
 * sorted by tenant and user so that concurrent writers lock rows in the same order (and a
 * PostgreSQL upsert never meets the same row twice).
 */
export function latestModels(rows: TimeoutModelRow[]): TimeoutModelRow[] {
  const latest = new Map<string, TimeoutModelRow>();
  for (const r of rows) latest.set(`${r.tenant}\0${r.userId}`, r);
  const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return [...latest.values()].sort(
    (a, b) => byKey(a.tenant, b.tenant) || byKey(a.userId, b.userId),
  );
}

/** Sample arguments with which the index test plans each query. */
export const PLAN_SAMPLES = {
  id: '01J00000000000000000000000',
  list: { userId: 'u', limit: 50, now: 0 } satisfies ListFilter,
  listFiltered: {
    userId: 'u',
    limit: 50,
    now: 0,
    kind: 'fact',
    tags: ['a', 'b'],
    agentId: 'a',
    pinned: true,
    createdFrom: 0,
    createdTo: 1,
    updatedFrom: 0,
    updatedTo: 1,
    beforeId: '01J00000000000000000000000',
  } satisfies ListFilter,
  listBySession: { userId: 'u', sessionId: 's', limit: 50, now: 0 } satisfies ListFilter,
  search: { terms: ['sample', 'words'], limit: 50 },
};

/**
 * Search terms as the full-text queries take them: NUL characters removed (neither engine
 * accepts them in a query), empty and repeated words dropped.
 */
export function searchWords(terms: string[]): string[] {
  return [...new Set(terms.map((t) => t.replaceAll('\0', '')).filter((t) => t.length > 0))];
}

/** Most rows one access-statistics statement updates. */
export const ACCESS_CHUNK = 500;

/**
 * Access deltas merged per memory (counts summed, latest time kept) and sorted by tenant and
 * id (UTF-16 code units: any total order works if every instance uses the same one). Writers
 * lock rows in this order, across chunks too, so two flushes cannot deadlock.
 */
export function mergeAccess(deltas: AccessDelta[]): AccessDelta[] {
  const merged = new Map<string, AccessDelta>();
  for (const d of deltas) {
    const key = `${d.tenant}\0${d.id}`;
    const seen = merged.get(key);
    if (seen)
      merged.set(key, { ...seen, count: seen.count + d.count, at: Math.max(seen.at, d.at) });
    else merged.set(key, { tenant: d.tenant, id: d.id, count: d.count, at: d.at });
  }
  return [...merged.values()].sort(accessOrder);
}

const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The order access deltas are written in: by tenant, then memory id (ids grow with creation,
 * like the tables' row order, so rows written together share pages).
 */
export function accessOrder(a: AccessDelta, b: AccessDelta): number {
  return byKey(a.tenant, b.tenant) || byKey(a.id, b.id);
}

/** Adds a delta's hour counts to stored ones (`"n,n,…"`, 24 of them); returns both forms. */
export function mergeHours(
  stored: string | null,
  delta: ActivityDelta,
): { text: string; usual: number } {
  const hours = stored ? stored.split(',').map(Number) : new Array<number>(24).fill(0);
  let usual = 0;
  for (let h = 0; h < 24; h++) {
    hours[h] = (hours[h] ?? 0) + (delta.hours[h] ?? 0);
    if ((hours[h] ?? 0) > (hours[usual] ?? 0)) usual = h;
  }
  return { text: hours.join(','), usual };
}

/** The activity queries, shared by both dialects (`?` placeholders). */
export const ACTIVITY_SQL = {
  recent:
    'SELECT tenant, user_id FROM user_activity WHERE last_seen_at >= ? ORDER BY last_seen_at DESC LIMIT ?',
  usual:
    'SELECT tenant, user_id FROM user_activity WHERE usual_hour = ? AND last_seen_at >= ? ORDER BY last_seen_at DESC LIMIT ?',
};

/** The user_activity table, the same in both dialects (times and counts fit both). */
export const ACTIVITY_TABLE = `
  CREATE TABLE user_activity (
    tenant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    hours TEXT NOT NULL,
    usual_hour INTEGER NOT NULL,
    PRIMARY KEY (tenant, user_id)
  );
  CREATE INDEX user_activity_recent ON user_activity (last_seen_at);
  CREATE INDEX user_activity_usual ON user_activity (usual_hour, last_seen_at);
`;

/** The values a session's activity sets, in the order of both dialects' touch statement. */
export function activityValues(a: SessionActivity): unknown[] {
  return [a.at, a.expiresAt, a.timeoutMs, JSON.stringify(a.timeoutBasis), a.messages];
}
