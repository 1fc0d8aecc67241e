/** The kinds Engram knows; any other short string is accepted as a custom kind. */
export const KNOWN_KINDS = ['fact', 'preference', 'event', 'message', 'summary'] as const;

/** A JSON object as stored in `metadata` (parsed from JSON, so its values are JSON too). */
export type JsonObject = Record<string, unknown>;

/** A memory as the store holds it: times are epoch milliseconds. */
export interface MemoryRow {
  tenant: string;
  /** ULID: sortable by creation time. */
  id: string;
  userId: string;
  agentId: string | null;
  sessionId: string | null;
  content: string;
  kind: string;
  tags: string[];
  metadata: JsonObject;
  /** 0..1 */
  importance: number;
  pinned: boolean;
  createdAt: number;
  updatedAt: number;
  expiresAt: number | null;
  /** Set by a soft delete; the memory can be restored until the grace period ends. */
  deletedAt: number | null;
  accessCount: number;
  lastAccessedAt: number | null;
  /** Starts at 1 and grows by one on every change (update, delete, restore). */
  version: number;
  /**
   * Embedding of the content when an embedder is configured (null otherwise, or when the
   * embedder failed at write time). Never part of the API answers nor of history snapshots.
   */
  embedding: Float32Array | null;
}

/** What happened to a memory in one history entry. */
export type HistoryOp = 'create' | 'update' | 'delete' | 'restore';

/** One change of one memory, with the memory as it was after the change. */
export interface HistoryEntry {
  memoryId: string;
  version: number;
  op: HistoryOp;
  at: number;
  snapshot: MemoryRow;
}

/** A remembered response to a write that carried an Idempotency-Key. */
export interface IdempotencyRecord {
  tenant: string;
  key: string;
  /** Hash of method, route, parameters and body: a reused key with another request is refused. */
  fingerprint: string;
  /** The user whose data the response holds, so that erasing the user erases it too. */
  userId: string | null;
  status: number;
  /** The serialized response body. */
  body: string;
  createdAt: number;
  expiresAt: number;
}

/** Filters and page of a memory listing. */
export interface ListFilter {
  userId: string;
  kind?: string | undefined;
  /** Memories carrying every one of these tags. */
  tags?: string[] | undefined;
  agentId?: string | undefined;
  sessionId?: string | undefined;
  pinned?: boolean | undefined;
  createdFrom?: number | undefined;
  createdTo?: number | undefined;
  updatedFrom?: number | undefined;
  updatedTo?: number | undefined;
  /** Return memories with ids strictly below this one (keyset pagination, newest first). */
  beforeId?: string | undefined;
  limit: number;
  /** Memories expired at this instant are left out. */
  now: number;
}

/** An API key as stored: only a hash of its secret is kept. */
export interface ApiKeyRow {
  /** Public identifier, part of the key text. */
  id: string;
  tenant: string;
  /** SHA-256 of the secret part. */
  hash: Buffer;
  label: string | null;
  createdAt: number;
  revokedAt: number | null;
}

/** Activity of one user since the last flush: when last seen, and how often in each UTC hour. */
export interface ActivityDelta {
  tenant: string;
  userId: string;
  lastSeenAt: number;
  /** 24 counts, index = UTC hour of day. */
  hours: number[];
}

/** A user, as returned by activity queries. */
export interface ActiveUser {
  tenant: string;
  userId: string;
}

/** Accesses of one memory to add to its statistics (the write-behind of search hits). */
export interface AccessDelta {
  tenant: string;
  id: string;
  /** Accesses since the last flush. */
  count: number;
  /** The latest of them, epoch ms. */
  at: number;
}

/** A memory found by the store's full-text index, with that index's score (higher is better). */
export interface TextCandidate {
  row: MemoryRow;
  score: number;
}
