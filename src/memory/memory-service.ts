import { EngramError, type ErrorDetail } from '../errors.ts';
import { type Embedder, EmbedderUnavailable } from '../search/embedder.ts';
import type { Store } from '../store/store.ts';
import type { Clock } from '../util/clock.ts';
import { yieldToLoop } from '../util/yield.ts';
import type { Idempotency, IdempotencyRequest } from './idempotency.ts';
import { newMemoryId } from './ids.ts';
import {
  contentProblems,
  LIMITS,
  metadataProblems,
  normalizeTags,
  parseTime,
  rejectIfAny,
} from './memory-rules.ts';
import type {
  HistoryEntry,
  IdempotencyRecord,
  JsonObject,
  ListFilter,
  MemoryRow,
} from './memory-types.ts';
import { toPublicMemory } from './memory-view.ts';

/** A memory to create, as validated by the route schema. */
export interface NewMemoryInput {
  userId: string;
  agentId?: string | undefined;
  sessionId?: string | undefined;
  content: string;
  kind?: string | undefined;
  tags?: string[] | undefined;
  metadata?: JsonObject | undefined;
  importance?: number | undefined;
  pinned?: boolean | undefined;
  /** ISO-8601; for importing history. Never in the future. */
  createdAt?: string | undefined;
  /** ISO-8601; must be in the future. */
  expiresAt?: string | undefined;
}

/** Changes to a memory; `expiresAt: null` removes the expiry. */
export interface MemoryPatch {
  content?: string | undefined;
  kind?: string | undefined;
  tags?: string[] | undefined;
  metadata?: JsonObject | undefined;
  importance?: number | undefined;
  pinned?: boolean | undefined;
  expiresAt?: string | null | undefined;
}

/** One rejected item of a batch. */
export interface BatchItemReport {
  index: number;
  errors: ErrorDetail[];
}

/** Options of the {@link MemoryService}. */
export interface MemoryServiceOptions {
  /** How long a deleted memory can be restored. */
  deleteGraceMs: number;
  /**
   * Called after every committed write with the users it changed and the rows as committed
   * (none for an erasure), before the write is answered: the cache moves their versions and
   * search indexes take the rows. It must not throw.
   */
  onWrite?: (
    tenant: string,
    userIds: Iterable<string>,
    rows: MemoryRow[],
    /** An erasure: no activity of the user to note, no reads to refresh. */
    erased?: boolean,
  ) => Promise<void>;
  /**
   * Embeds the content of created and re-worded memories before they are stored. Null or
   * missing: memories are stored without vectors.
   */
  embedder?: Embedder | null | undefined;
  /**
   * Called when the embedder fails; the write goes on with `embedding: null` (an embedder
   * outage never fails a write). It must not throw.
   */
  onEmbedError?: ((err: unknown) => void) | undefined;
}

/** Rows written per step of a chunked operation: a few milliseconds of work each. */
const CHUNK = 500;

/**
 * The memory use cases: create, read, change, delete, restore, list, export and erase. All
 * reads hide soft-deleted and expired memories; all writes record history.
 */
export class MemoryService {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #idem: Idempotency;
  readonly #options: MemoryServiceOptions;

  constructor(store: Store, clock: Clock, idem: Idempotency, options: MemoryServiceOptions) {
    this.#store = store;
    this.#clock = clock;
    this.#idem = idem;
    this.#options = options;
  }

  #isLive(row: MemoryRow, now: number): boolean {
    return row.deletedAt === null && (row.expiresAt === null || row.expiresAt > now);
  }

  /** Rule problems of one new memory (the schema is checked by the route), under `path`. */
  problemsOf(input: NewMemoryInput, path: string): ErrorDetail[] {
    return this.#problems(input, this.#clock.now(), path);
  }

  #problems(input: NewMemoryInput, now: number, path: string): ErrorDetail[] {
    const problems = contentProblems(input.content, `${path}/content`);
    if (input.metadata) problems.push(...metadataProblems(input.metadata, `${path}/metadata`));
    if (input.createdAt !== undefined) {
      const createdAt = parseTime(input.createdAt);
      if (createdAt > now + LIMITS.createdAtSkewMs) {
        problems.push({ path: `${path}/createdAt`, message: 'must not be in the future' });
      }
    }
    if (input.expiresAt !== undefined && parseTime(input.expiresAt) <= now) {
      problems.push({ path: `${path}/expiresAt`, message: 'must be in the future' });
    }
    return problems;
  }

  /**
   * A new memory row from input that passed the route's schema and {@link problemsOf}, as
   * `create` would store it (no vector): for callers that commit it in their own transaction.
   */
  build(tenant: string, input: NewMemoryInput, now = this.#clock.now()): MemoryRow {
    // A createdAt within the tolerated skew is clamped to now: never in the future.
    const createdAt =
      input.createdAt === undefined ? now : Math.min(parseTime(input.createdAt), now);
    return {
      tenant,
      id: newMemoryId(createdAt, now),
      userId: input.userId,
      agentId: input.agentId ?? null,
      sessionId: input.sessionId ?? null,
      content: input.content,
      kind: input.kind ?? 'fact',
      tags: normalizeTags(input.tags ?? []),
      metadata: input.metadata ?? {},
      importance: input.importance ?? 0.5,
      pinned: input.pinned ?? false,
      createdAt,
      updatedAt: now,
      expiresAt: input.expiresAt === undefined ? null : parseTime(input.expiresAt),
      deletedAt: null,
      accessCount: 0,
      lastAccessedAt: null,
      version: 1,
      embedding: null,
    };
  }

  /**
   * One vector per text from the embedder, in one call; all null without an embedder or when
   * it fails (reported to `onEmbedError`, never thrown).
   */
  async #embed(texts: string[]): Promise<(Float32Array | null)[]> {
    const embedder = this.#options.embedder;
    if (!embedder || texts.length === 0) return texts.map(() => null);
    try {
      const vectors = await embedder.embed(texts);
      if (vectors.length !== texts.length) {
        throw new EmbedderUnavailable(
          `embedder returned ${vectors.length} vectors for ${texts.length} texts`,
        );
      }
      return vectors;
    } catch (err) {
      try {
        this.#options.onEmbedError?.(err);
      } catch {
        // A failing report must not fail the write either.
      }
      return texts.map(() => null);
    }
  }

  /** Creates one memory; the promise resolves once it is committed. */
  async create(
    tenant: string,
    input: NewMemoryInput,
    idem?: IdempotencyRequest,
  ): Promise<MemoryRow> {
    const now = this.#clock.now();
    rejectIfAny(this.#problems(input, now, '/body'));
    const row = this.build(tenant, input, now);
    row.embedding = (await this.#embed([row.content]))[0] ?? null;
    const record = idem
      ? this.#idem.record(tenant, idem, row.userId, 201, toPublicMemory(row))
      : undefined;
    await this.#store.insertMemories([row], record);
    await this.#changed(tenant, [row.userId], [row]);
    return row;
  }

  async #changed(
    tenant: string,
    userIds: Iterable<string>,
    rows: MemoryRow[],
    erased = false,
  ): Promise<void> {
    await this.#options.onWrite?.(tenant, userIds, rows, erased);
  }

  /** Rules problems of every batch item, by index (schema problems are found by the route). */
  batchProblems(inputs: NewMemoryInput[]): BatchItemReport[] {
    const now = this.#clock.now();
    const reports: BatchItemReport[] = [];
    inputs.forEach((input, index) => {
      const errors = this.#problems(input, now, `/body/items/${index}`);
      if (errors.length > 0) reports.push({ index, errors });
    });
    return reports;
  }

  /**
   * Creates up to 1,000 memories in one transaction: all of them or, on any problem, none.
   * `insert` commits them (default: `insertMemories`); a caller may commit them together with
   * other state, in the same transaction (a session's messages with the session).
   */
  async createBatch(
    tenant: string,
    inputs: NewMemoryInput[],
    idem?: IdempotencyRequest,
    insert: (rows: MemoryRow[], record: IdempotencyRecord | undefined) => Promise<void> = (
      rows,
      record,
    ) => this.#store.insertMemories(rows, record),
  ): Promise<MemoryRow[]> {
    const reports = this.batchProblems(inputs);
    if (reports.length > 0) {
      throw new EngramError('ENGRAM_BATCH_REJECTED', { extra: { items: reports } });
    }
    const now = this.#clock.now();
    const rows = inputs.map((input) => this.build(tenant, input, now));
    const vectors = await this.#embed(rows.map((r) => r.content));
    rows.forEach((row, i) => {
      row.embedding = vectors[i] ?? null;
    });
    // A batch may span users; it is erased with the first user's data at most, so record none.
    const userIds = new Set(rows.map((r) => r.userId));
    const userId = userIds.size === 1 ? (rows[0]?.userId ?? null) : null;
    const record = idem
      ? this.#idem.record(tenant, idem, userId, 201, { items: rows.map(toPublicMemory) })
      : undefined;
    await insert(rows, record);
    await this.#changed(tenant, userIds, rows);
    return rows;
  }

  /** A live memory, or ENGRAM_MEMORY_NOT_FOUND. */
  async get(tenant: string, id: string): Promise<MemoryRow> {
    const row = await this.#store.getMemory(tenant, id);
    if (!row || !this.#isLive(row, this.#clock.now())) {
      throw new EngramError('ENGRAM_MEMORY_NOT_FOUND');
    }
    return row;
  }

  #checkVersion(current: MemoryRow, expected: number | undefined): void {
    if (expected !== undefined && current.version !== expected) {
      throw new EngramError('ENGRAM_VERSION_CONFLICT', {
        extra: { currentVersion: current.version },
      });
    }
  }

  /** Applies a patch; with `expectedVersion` the write only happens on that version (412). */
  async update(
    tenant: string,
    id: string,
    patch: MemoryPatch,
    expectedVersion?: number,
    idem?: IdempotencyRequest,
  ): Promise<MemoryRow> {
    const now = this.#clock.now();
    const problems =
      patch.content === undefined ? [] : contentProblems(patch.content, '/body/content');
    if (patch.metadata) problems.push(...metadataProblems(patch.metadata, '/body/metadata'));
    if (typeof patch.expiresAt === 'string' && parseTime(patch.expiresAt) <= now) {
      problems.push({ path: '/body/expiresAt', message: 'must be in the future' });
    }
    rejectIfAny(problems);
    // The store's mutation is synchronous: the new content's vector is computed before it.
    const [fresh = null] = patch.content === undefined ? [] : await this.#embed([patch.content]);
    return this.#mutate(
      tenant,
      id,
      200,
      (current) => {
        if (!this.#isLive(current, now)) throw new EngramError('ENGRAM_MEMORY_NOT_FOUND');
        this.#checkVersion(current, expectedVersion);
        const expiresAt =
          patch.expiresAt === undefined
            ? current.expiresAt
            : patch.expiresAt === null
              ? null
              : parseTime(patch.expiresAt);
        // Same content: its vector stays (or, when it has none yet, gets the fresh one).
        const embedding =
          patch.content === undefined ||
          (patch.content === current.content && current.embedding !== null)
            ? current.embedding
            : fresh;
        return {
          op: 'update',
          row: {
            ...current,
            content: patch.content ?? current.content,
            kind: patch.kind ?? current.kind,
            tags: patch.tags ? normalizeTags(patch.tags) : current.tags,
            metadata: patch.metadata ?? current.metadata,
            importance: patch.importance ?? current.importance,
            pinned: patch.pinned ?? current.pinned,
            expiresAt,
            updatedAt: Math.max(now, current.updatedAt),
            version: current.version + 1,
            embedding,
          },
        };
      },
      idem,
    );
  }

  /** Soft-deletes a memory; it can be restored during the grace period. */
  async delete(
    tenant: string,
    id: string,
    expectedVersion?: number,
    idem?: IdempotencyRequest,
  ): Promise<MemoryRow> {
    const now = this.#clock.now();
    return this.#mutate(
      tenant,
      id,
      200,
      (current) => {
        if (!this.#isLive(current, now)) throw new EngramError('ENGRAM_MEMORY_NOT_FOUND');
        this.#checkVersion(current, expectedVersion);
        return {
          op: 'delete',
          row: { ...current, deletedAt: now, updatedAt: now, version: current.version + 1 },
        };
      },
      idem,
    );
  }

  /** Brings back a soft-deleted memory within the grace period (410 after it). */
  async restore(tenant: string, id: string, idem?: IdempotencyRequest): Promise<MemoryRow> {
    const now = this.#clock.now();
    return this.#mutate(
      tenant,
      id,
      200,
      (current) => {
        if (current.expiresAt !== null && current.expiresAt <= now) {
          throw new EngramError('ENGRAM_MEMORY_NOT_FOUND');
        }
        if (current.deletedAt === null) throw new EngramError('ENGRAM_MEMORY_NOT_DELETED');
        if (current.deletedAt + this.#options.deleteGraceMs < now) {
          throw new EngramError('ENGRAM_RESTORE_WINDOW_EXPIRED');
        }
        return {
          op: 'restore',
          row: { ...current, deletedAt: null, updatedAt: now, version: current.version + 1 },
        };
      },
      idem,
    );
  }

  async #mutate(
    tenant: string,
    id: string,
    status: number,
    mutate: Parameters<Store['mutateMemory']>[2],
    idem: IdempotencyRequest | undefined,
  ): Promise<MemoryRow> {
    const row = await this.#store.mutateMemory(
      tenant,
      id,
      mutate,
      idem && ((r) => this.#idem.record(tenant, idem, r.userId, status, toPublicMemory(r))),
    );
    if (!row) throw new EngramError('ENGRAM_MEMORY_NOT_FOUND');
    await this.#changed(tenant, [row.userId], [row]);
    return row;
  }

  /** The change history of a memory that exists or can still be restored. */
  async history(tenant: string, id: string): Promise<HistoryEntry[]> {
    const row = await this.#store.getMemory(tenant, id);
    const now = this.#clock.now();
    const visible =
      row !== null &&
      (row.expiresAt === null || row.expiresAt > now) &&
      (row.deletedAt === null || row.deletedAt + this.#options.deleteGraceMs >= now);
    if (!visible) throw new EngramError('ENGRAM_MEMORY_NOT_FOUND');
    return this.#store.listHistory(tenant, id);
  }

  /** A page of a user's memories, newest first; `nextBeforeId` continues it. */
  async list(
    tenant: string,
    filter: Omit<ListFilter, 'now'>,
  ): Promise<{ rows: MemoryRow[]; nextBeforeId: string | null }> {
    // One extra row tells whether another page exists without a count query.
    const rows = await this.#store.listMemories(tenant, {
      ...filter,
      limit: filter.limit + 1,
      now: this.#clock.now(),
    });
    const more = rows.length > filter.limit;
    if (more) rows.length = filter.limit;
    return { rows, nextBeforeId: more ? (rows[rows.length - 1]?.id ?? null) : null };
  }

  /** Every live memory of a user, oldest first, read in chunks. */
  async *exportUser(tenant: string, userId: string): AsyncGenerator<MemoryRow[]> {
    let after: string | null = null;
    for (;;) {
      const chunk = await this.#store.exportMemories(
        tenant,
        userId,
        after,
        CHUNK,
        this.#clock.now(),
      );
      if (chunk.length === 0) return;
      yield chunk;
      if (chunk.length < CHUNK) return;
      after = chunk[chunk.length - 1]?.id ?? null;
      await yieldToLoop();
    }
  }

  /** Erases every memory of a user (with history and remembered responses), in chunks. */
  async eraseUser(tenant: string, userId: string): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.#store.eraseUserChunk(tenant, userId, CHUNK);
      total += n;
      if (n < CHUNK) break;
      await yieldToLoop();
    }
    await this.#store.eraseUserRecords(tenant, userId);
    await this.#changed(tenant, [userId], [], true);
    return total;
  }
}
