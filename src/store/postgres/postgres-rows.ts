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
