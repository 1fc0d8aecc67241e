import { isoTime } from '../util/iso-time.ts';
import type { HistoryEntry, JsonObject, MemoryRow } from './memory-types.ts';

/** A memory as the API shows it: ISO-8601 times, no tenant. */
export interface PublicMemory {
  id: string;
  userId: string;
  agentId: string | null;
  sessionId: string | null;
  content: string;
  kind: string;
  tags: string[];
  metadata: JsonObject;
  importance: number;
  pinned: boolean;
  createdAt: string;
  updatedAt: string;
  expiresAt: string | null;
  deletedAt: string | null;
  accessCount: number;
  lastAccessedAt: string | null;
  version: number;
}

const iso = (ms: number | null): string | null => (ms === null ? null : isoTime(ms));

/** The public view of a stored memory. */
export function toPublicMemory(row: MemoryRow): PublicMemory {
  return {
    id: row.id,
    userId: row.userId,
    agentId: row.agentId,
    sessionId: row.sessionId,
    content: row.content,
    kind: row.kind,
    tags: row.tags,
    metadata: row.metadata,
    importance: row.importance,
    pinned: row.pinned,
    createdAt: isoTime(row.createdAt),
    updatedAt: isoTime(row.updatedAt),
    expiresAt: iso(row.expiresAt),
    deletedAt: iso(row.deletedAt),
    accessCount: row.accessCount,
    lastAccessedAt: iso(row.lastAccessedAt),
    version: row.version,
  };
}

/** The public view of one history entry. */
export function toPublicHistory(entry: HistoryEntry): {
  version: number;
  op: string;
  at: string;
  memory: PublicMemory;
} {
  return {
    version: entry.version,
    op: entry.op,
    at: new Date(entry.at).toISOString(),
    memory: toPublicMemory(entry.snapshot),
  };
}
