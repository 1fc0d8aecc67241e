import { ACTIVITY_TABLE } from '../row-mapping.ts';
import { FTS_BODY_FUNCTION } from './fts-tokens.ts';
/** One schema step; applied in order, recorded in `schema_migrations`. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** SQLite schema history. Never edit a released step: add a new one. */
export const SQLITE_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'memories, history, idempotency, api keys',
    sql: `
      CREATE TABLE memories (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        agent_id TEXT,
        session_id TEXT,
        content TEXT NOT NULL,
        kind TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        metadata TEXT NOT NULL DEFAULT '{}',
        importance REAL NOT NULL,
        pinned INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        expires_at INTEGER,
        deleted_at INTEGER,
        access_count INTEGER NOT NULL DEFAULT 0,
        last_accessed_at INTEGER,
        version INTEGER NOT NULL,
        PRIMARY KEY (tenant, id)
      );
      CREATE INDEX memories_user ON memories (tenant, user_id, id);
      CREATE INDEX memories_session ON memories (tenant, user_id, session_id, id)
        WHERE session_id IS NOT NULL;
      CREATE INDEX memories_expiry ON memories (expires_at) WHERE expires_at IS NOT NULL;
      CREATE INDEX memories_deleted ON memories (deleted_at) WHERE deleted_at IS NOT NULL;

      CREATE TABLE memory_history (
        tenant TEXT NOT NULL,
        memory_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        op TEXT NOT NULL,
        at INTEGER NOT NULL,
        snapshot TEXT NOT NULL,
        PRIMARY KEY (tenant, memory_id, version),
        FOREIGN KEY (tenant, memory_id) REFERENCES memories (tenant, id) ON DELETE CASCADE
      );

      CREATE TABLE idempotency_keys (
        tenant TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        user_id TEXT,
        status INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (tenant, key)
      );
      CREATE INDEX idempotency_expiry ON idempotency_keys (expires_at);
      CREATE INDEX idempotency_user ON idempotency_keys (tenant, user_id)
        WHERE user_id IS NOT NULL;

      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        hash BLOB NOT NULL,
        label TEXT,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
      );
    `,
  },
  {
    version: 2,
    name: 'user activity (for cache warming)',
    sql: ACTIVITY_TABLE,
  },
  {
    version: 3,
    name: 'embeddings and full-text search',
    // A contentless FTS5 index (it stores no copy of the text) keyed by memories.rowid, which
    // no statement changes (no VACUUM: without an INTEGER PRIMARY KEY it may renumber rows).
    // `scope` holds one token, the hex of tenant and user, so that a query matches one user;
    // `body` the words of content, tags and kind. Only live rows are indexed; expiry is
    // checked by the query. The triggers ignore access statistics.
    sql: `
      ALTER TABLE memories ADD COLUMN embedding BLOB;

      CREATE VIRTUAL TABLE memories_fts USING fts5(
        scope, body,
        content = '', contentless_delete = 1,
        tokenize = 'porter unicode61 remove_diacritics 2'
      );

      CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories
      WHEN new.deleted_at IS NULL
      BEGIN
        INSERT INTO memories_fts (rowid, scope, body) VALUES (
          new.rowid,
          hex(new.tenant || char(31) || new.user_id),
          new.content || char(10)
            || (SELECT coalesce(group_concat(value, ' '), '') FROM json_each(new.tags))
            || char(10) || new.kind
        );
      END;

      CREATE TRIGGER memories_fts_update
        AFTER UPDATE OF content, tags, kind, deleted_at, tenant, user_id ON memories
      WHEN old.content IS NOT new.content OR old.tags IS NOT new.tags OR old.kind IS NOT new.kind
        OR (old.deleted_at IS NULL) <> (new.deleted_at IS NULL)
        OR old.tenant IS NOT new.tenant OR old.user_id IS NOT new.user_id
      BEGIN
        DELETE FROM memories_fts WHERE rowid = old.rowid AND old.deleted_at IS NULL;
        INSERT INTO memories_fts (rowid, scope, body)
        SELECT
          new.rowid,
          hex(new.tenant || char(31) || new.user_id),
          new.content || char(10)
            || (SELECT coalesce(group_concat(value, ' '), '') FROM json_each(new.tags))
            || char(10) || new.kind
        WHERE new.deleted_at IS NULL;
      END;

      CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories
      WHEN old.deleted_at IS NULL
      BEGIN
        DELETE FROM memories_fts WHERE rowid = old.rowid;
      END;

      INSERT INTO memories_fts (rowid, scope, body)
      SELECT
        rowid,
        hex(tenant || char(31) || user_id),
        content || char(10)
          || (SELECT coalesce(group_concat(value, ' '), '') FROM json_each(memories.tags))
          || char(10) || kind
      FROM memories
      WHERE deleted_at IS NULL;
    `,
  },
  {
    version: 4,
    name: 'sessions, timeout models, memories by importance',
    // The due index holds active sessions only: the sweeper's queries name state = 'active'
    // as a literal so that the planner can use it. Ended sessions keep their row (and their
    // expires_at = ended_at) for listing.
    sql: `
      CREATE TABLE sessions (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        agent_id TEXT,
        state TEXT NOT NULL CHECK (state IN ('active', 'ended', 'expired')),
        created_at INTEGER NOT NULL,
        last_activity_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        ended_at INTEGER,
        timeout_ms INTEGER NOT NULL,
        timeout_basis TEXT NOT NULL,
        message_count INTEGER NOT NULL DEFAULT 0,
        summary_id TEXT,
        PRIMARY KEY (tenant, id)
      );
      CREATE INDEX sessions_user ON sessions (tenant, user_id, id);
      CREATE INDEX sessions_due ON sessions (expires_at) WHERE state = 'active';

      CREATE TABLE timeout_models (
        tenant TEXT NOT NULL,
        user_id TEXT NOT NULL,
        model TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (tenant, user_id)
      );

      CREATE INDEX memories_importance ON memories (tenant, user_id, importance DESC, id DESC)
        WHERE deleted_at IS NULL;
    `,
  },
  {
    version: 5,
    name: 'full-text tokens per user',
    // The index of step 3 shared one token per word among all users: a query read every
    // user's postings of its words (its cost grew with the store, ≈ 15 ms at 1,000,000
    // memories). Its tokens are now one per (tenant, user, term), computed by the tokenizer of
    // the in-process index through a function the store registers (fts-tokens.ts): a query
    // reads its own user's postings. Rebuilt from the live rows.
    sql: `
      DROP TRIGGER memories_fts_insert;
      DROP TRIGGER memories_fts_update;
      DROP TRIGGER memories_fts_delete;
      DROP TABLE memories_fts;

      CREATE VIRTUAL TABLE memories_fts USING fts5(
        body,
        content = '', contentless_delete = 1,
        tokenize = 'ascii'
      );

      CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories
      WHEN new.deleted_at IS NULL
      BEGIN
        INSERT INTO memories_fts (rowid, body) VALUES (
          new.rowid,
          ${FTS_BODY_FUNCTION}(new.tenant, new.user_id, new.content, new.tags, new.kind)
        );
      END;

      CREATE TRIGGER memories_fts_update
        AFTER UPDATE OF content, tags, kind, deleted_at, tenant, user_id ON memories
      WHEN old.content IS NOT new.content OR old.tags IS NOT new.tags OR old.kind IS NOT new.kind
        OR (old.deleted_at IS NULL) <> (new.deleted_at IS NULL)
        OR old.tenant IS NOT new.tenant OR old.user_id IS NOT new.user_id
      BEGIN
        DELETE FROM memories_fts WHERE rowid = old.rowid AND old.deleted_at IS NULL;
        INSERT INTO memories_fts (rowid, body)
        SELECT
          new.rowid,
          ${FTS_BODY_FUNCTION}(new.tenant, new.user_id, new.content, new.tags, new.kind)
        WHERE new.deleted_at IS NULL;
      END;

      CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories
      WHEN old.deleted_at IS NULL
      BEGIN
        DELETE FROM memories_fts WHERE rowid = old.rowid;
      END;

      INSERT INTO memories_fts (rowid, body)
      SELECT rowid, ${FTS_BODY_FUNCTION}(tenant, user_id, content, tags, kind)
      FROM memories
      WHERE deleted_at IS NULL;
    `,
  },
  {
    version: 6,
    name: 'live memories counted from an index',
    // A user's live memories are counted before every index build (and its admission). From
    // the partial importance index the count read every row for its expiry: a random page
    // per memory of the user. This index holds what the count reads (deleted_at = NULL is a
    // seek, expires_at is in the entry).
    sql: `
      CREATE INDEX memories_live ON memories (tenant, user_id, deleted_at, expires_at);
    `,
  },
];
