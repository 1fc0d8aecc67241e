import { ACTIVITY_TABLE } from '../row-mapping.ts';
import type { Migration } from '../sqlite/sqlite-migrations.ts';

/**
 * PostgreSQL schema history, the same tables and indexes as the SQLite one. Never edit a
 * released step: add a new one. Names are unqualified so that `search_path` picks the schema.
 */
export const POSTGRES_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'memories, history, idempotency, api keys',
    // Ids are COLLATE "C" so that ordering and keyset cursors compare bytes, as SQLite does,
    // whatever the database's default collation.
    sql: `
      CREATE TABLE memories (
        tenant TEXT NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        user_id TEXT NOT NULL,
        agent_id TEXT,
        session_id TEXT,
        content TEXT NOT NULL,
        kind TEXT NOT NULL,
        tags JSONB NOT NULL DEFAULT '[]',
        metadata JSONB NOT NULL DEFAULT '{}',
        importance DOUBLE PRECISION NOT NULL,
        pinned BOOLEAN NOT NULL DEFAULT false,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        expires_at BIGINT,
        deleted_at BIGINT,
        access_count INTEGER NOT NULL DEFAULT 0,
        last_accessed_at BIGINT,
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
        memory_id TEXT COLLATE "C" NOT NULL,
        version INTEGER NOT NULL,
        op TEXT NOT NULL,
        at BIGINT NOT NULL,
        snapshot JSONB NOT NULL,
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
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (tenant, key)
      );
      CREATE INDEX idempotency_expiry ON idempotency_keys (expires_at);
      CREATE INDEX idempotency_user ON idempotency_keys (tenant, user_id)
        WHERE user_id IS NOT NULL;

      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        hash BYTEA NOT NULL,
        label TEXT,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT
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
    // One ALTER, one table rewrite (for the stored column). The expression must be immutable:
    // the two-argument forms with a regconfig are; jsonb_to_tsvector indexes the tag strings.
    // The GIN index leaves deleted memories out; the search query asks for live ones only.
    sql: `
      ALTER TABLE memories
        ADD COLUMN embedding real[],
        ADD COLUMN search tsvector GENERATED ALWAYS AS (
          to_tsvector('english'::regconfig, content)
          || jsonb_to_tsvector('english'::regconfig, tags, '["string"]'::jsonb)
          || to_tsvector('english'::regconfig, kind)
        ) STORED;
      CREATE INDEX memories_search ON memories USING gin (search) WHERE deleted_at IS NULL;
    `,
  },
  {
    version: 4,
    name: 'sessions, timeout models, memories by importance',
    // Session ids are COLLATE "C" like memory ids (byte order for paging). The due index holds
    // active sessions only: the sweeper's queries name state = 'active' as a literal so that
    // the planner can use it. The model is TEXT: its JSON is stored and returned as given.
    sql: `
      CREATE TABLE sessions (
        tenant TEXT NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        user_id TEXT NOT NULL,
        agent_id TEXT,
        state TEXT NOT NULL CHECK (state IN ('active', 'ended', 'expired')),
        created_at BIGINT NOT NULL,
        last_activity_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        ended_at BIGINT,
        timeout_ms BIGINT NOT NULL,
        timeout_basis JSONB NOT NULL,
        message_count INTEGER NOT NULL DEFAULT 0,
        summary_id TEXT COLLATE "C",
        PRIMARY KEY (tenant, id)
      );
      CREATE INDEX sessions_user ON sessions (tenant, user_id, id);
      CREATE INDEX sessions_due ON sessions (expires_at) WHERE state = 'active';

      CREATE TABLE timeout_models (
        tenant TEXT NOT NULL,
        user_id TEXT NOT NULL,
        model TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (tenant, user_id)
      );

      CREATE INDEX memories_importance ON memories (tenant, user_id, importance DESC, id DESC)
        WHERE deleted_at IS NULL;
    `,
  },
];
