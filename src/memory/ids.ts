import { monotonicFactory, ulid } from 'ulid';

/** Pattern of a memory id (a ULID in Crockford base32). */
export const MEMORY_ID_PATTERN = '^[0-9A-HJKMNP-TV-Z]{26}$';

const monotonic = monotonicFactory();

/**
 * A new memory id. Ids sort by creation time: an imported memory with a past `createdAt`
 * gets an id of that time, so that listings (newest first, by id) follow creation order.
 */
export function newMemoryId(createdAt: number, now: number): string {
  return createdAt >= now ? monotonic(createdAt) : ulid(createdAt);
}
