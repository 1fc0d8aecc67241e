import type { ListFilter } from '../memory/memory-types.ts';

/** A SQL fragment with its parameters, in dialect-neutral form (`?` placeholders). */
export interface SqlPart {
  sql: string;
  params: unknown[];
}

/**
 * The WHERE conditions of a memory listing after tenant and user, shared by both dialects.
 * `tagCondition` renders the dialect's "has this tag" test.
 */
export function listConditions(
  filter: ListFilter,
  tagCondition: (tags: string[]) => SqlPart,
): SqlPart {
  const parts: string[] = ['deleted_at IS NULL', '(expires_at IS NULL OR expires_at > ?)'];
  const params: unknown[] = [filter.now];
  const add = (sql: string, value: unknown): void => {
    parts.push(sql);
    params.push(value);
  };
  if (filter.sessionId !== undefined) add('session_id = ?', filter.sessionId);
  if (filter.kind !== undefined) add('kind = ?', filter.kind);
  if (filter.agentId !== undefined) add('agent_id = ?', filter.agentId);
  if (filter.pinned !== undefined) add('pinned = ?', filter.pinned);
  if (filter.createdFrom !== undefined) add('created_at >= ?', filter.createdFrom);
  if (filter.createdTo !== undefined) add('created_at < ?', filter.createdTo);
  if (filter.updatedFrom !== undefined) add('updated_at >= ?', filter.updatedFrom);
  if (filter.updatedTo !== undefined) add('updated_at < ?', filter.updatedTo);
  if (filter.beforeId !== undefined) add('id < ?', filter.beforeId);
  if (filter.tags !== undefined && filter.tags.length > 0) {
    const tag = tagCondition(filter.tags);
    parts.push(tag.sql);
    params.push(...tag.params);
  }
  return { sql: parts.join(' AND '), params };
}
