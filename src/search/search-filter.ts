import type { ListFilter, MemoryRow } from '../memory/memory-types.ts';
import type { UserIndex } from './user-index.ts';

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

/**
 * {@link passes} for the memory in a slot of an index, read from its columns (the tags, only
 * when the filter has some, from its record). The held memory is live unless expired.
 */
export function passesAt(index: UserIndex, slot: number, f: SearchFilter, now: number): boolean {
  if (!index.isLive(slot) || index.expired(slot, now)) return false;
  if (f.sessionId !== undefined && index.sessionId(slot) !== f.sessionId) return false;
  if (f.kind !== undefined && index.kind(slot) !== f.kind) return false;
  if (f.agentId !== undefined && index.agentId(slot) !== f.agentId) return false;
  if (f.pinned !== undefined && index.isPinned(slot) !== f.pinned) return false;
  const createdAt = index.createdAt(slot);
  if (f.createdFrom !== undefined && createdAt < f.createdFrom) return false;
  if (f.createdTo !== undefined && createdAt >= f.createdTo) return false;
  const updatedAt = index.updatedAt(slot);
  if (f.updatedFrom !== undefined && updatedAt < f.updatedFrom) return false;
  if (f.updatedTo !== undefined && updatedAt >= f.updatedTo) return false;
  if (f.tags !== undefined) {
    const tags = index.tags(slot);
    for (const tag of f.tags) if (!tags.includes(tag)) return false;
  }
  return true;
}
