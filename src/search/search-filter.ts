import type { ListFilter, MemoryRow } from '../memory/memory-types.ts';

/** The filters of a search: those of the list route, without its page. */
export type SearchFilter = Omit<ListFilter, 'userId' | 'beforeId' | 'limit' | 'now'>;

/**
 * Whether a memory passes the filters and is live at `now` (not deleted, not expired). The
 * same conditions as the list query (store/list-conditions.ts), evaluated in process.
 */
export function passes(row: MemoryRow, f: SearchFilter, now: number): boolean {
  if (row.deletedAt !== null || (row.expiresAt !== null && row.expiresAt <= now)) return false;
  if (f.sessionId !== undefined && row.sessionId !== f.sessionId) return false;
  if (f.kind !== undefined && row.kind !== f.kind) return false;
  if (f.agentId !== undefined && row.agentId !== f.agentId) return false;
  if (f.pinned !== undefined && row.pinned !== f.pinned) return false;
  if (f.createdFrom !== undefined && row.createdAt < f.createdFrom) return false;
  if (f.createdTo !== undefined && row.createdAt >= f.createdTo) return false;
  if (f.updatedFrom !== undefined && row.updatedAt < f.updatedFrom) return false;
  if (f.updatedTo !== undefined && row.updatedAt >= f.updatedTo) return false;
  if (f.tags !== undefined) {
    for (const tag of f.tags) if (!row.tags.includes(tag)) return false;
  }
  return true;
}
