import { newMemoryId } from '../../src/memory/ids.ts';
import type { MemoryRow } from '../../src/memory/memory-types.ts';

/**
 * A live memory row with plain defaults (tenant `acme`, user `alice`, a fact of importance
 * 0.5, created now), changed by `fields`; the id follows `createdAt` unless given.
 */
export function memoryRow(fields: Partial<MemoryRow> = {}): MemoryRow {
  const createdAt = fields.createdAt ?? Date.now();
  return {
    tenant: 'acme',
    id: newMemoryId(createdAt, Number.MAX_SAFE_INTEGER),
    userId: 'alice',
    agentId: null,
    sessionId: null,
    content: 'a memory',
    kind: 'fact',
    tags: [],
    metadata: {},
    importance: 0.5,
    pinned: false,
    createdAt,
    updatedAt: createdAt,
    expiresAt: null,
    deletedAt: null,
    accessCount: 0,
    lastAccessedAt: null,
    version: 1,
    embedding: null,
    ...fields,
  };
}
