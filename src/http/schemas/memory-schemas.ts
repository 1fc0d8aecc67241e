import { Type } from 'typebox';
import { LIMITS } from '../../memory/memory-rules.ts';
import { DateTime, ExternalId, MemoryId } from './common-schemas.ts';

const Kind = Type.String({
  pattern: '^[a-z][a-z0-9_.:-]*$',
  maxLength: LIMITS.kindLength,
  description: 'fact, preference, event, message, summary, or a custom kind',
});
/** One tag. */
export const Tag = Type.String({ minLength: 1, maxLength: LIMITS.tagLength });
const Tags = Type.Array(Tag, { maxItems: LIMITS.tags });
const Metadata = Type.Record(Type.String(), Type.Unknown(), {
  maxProperties: LIMITS.metadataKeys,
  description: `JSON object: at most ${LIMITS.metadataDepth} levels, ${LIMITS.metadataKeys} keys, ${LIMITS.metadataBytes} bytes`,
});
const Content = Type.String({
  minLength: 1,
  maxLength: LIMITS.contentBytes,
  description: 'Text of the memory, up to 16 KiB of UTF-8',
});
const Importance = Type.Number({ minimum: 0, maximum: 1 });

/** Body of a memory to create. */
export const NewMemory = Type.Object(
  {
    userId: ExternalId,
    agentId: Type.Optional(ExternalId),
    sessionId: Type.Optional(ExternalId),
    content: Content,
    kind: Type.Optional(Kind),
    tags: Type.Optional(Tags),
    metadata: Type.Optional(Metadata),
    importance: Type.Optional(Importance),
    pinned: Type.Optional(Type.Boolean()),
    createdAt: Type.Optional(DateTime),
    expiresAt: Type.Optional(DateTime),
  },
  { additionalProperties: false },
);

/** Body of a batch create. */
export const NewMemoryBatch = Type.Object(
  { items: Type.Array(NewMemory, { minItems: 1, maxItems: LIMITS.batchItems }) },
  { additionalProperties: false },
);

/** Body of a memory update. */
export const MemoryPatch = Type.Object(
  {
    content: Type.Optional(Content),
    kind: Type.Optional(Kind),
    tags: Type.Optional(Tags),
    metadata: Type.Optional(Metadata),
    importance: Type.Optional(Importance),
    pinned: Type.Optional(Type.Boolean()),
    expiresAt: Type.Optional(Type.Union([DateTime, Type.Null()])),
  },
  { additionalProperties: false, minProperties: 1 },
);

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) =>
  Type.Union([t, Type.Null()]);

/** A memory as returned by the API. */
export const Memory = Type.Object(
  {
    id: Type.String(),
    userId: Type.String(),
    agentId: Nullable(Type.String()),
    sessionId: Nullable(Type.String()),
    content: Type.String(),
    kind: Type.String(),
    tags: Type.Array(Type.String()),
    metadata: Type.Object({}, { additionalProperties: true }),
    importance: Type.Number(),
    pinned: Type.Boolean(),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    expiresAt: Nullable(Type.String({ format: 'date-time' })),
    deletedAt: Nullable(Type.String({ format: 'date-time' })),
    accessCount: Type.Integer(),
    lastAccessedAt: Nullable(Type.String({ format: 'date-time' })),
    version: Type.Integer(),
  },
  { additionalProperties: false },
);

/** Response of a batch create. */
export const MemoryBatch = Type.Object({ items: Type.Array(Memory) });

/** Path of routes on one memory. */
export const MemoryParams = Type.Object({ id: MemoryId });

/** Filters and page of a memory listing. */
export const ListQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: LIMITS.listLimit, default: LIMITS.defaultPage }),
    cursor: Type.Optional(Type.String({ maxLength: 128 })),
    kind: Type.Optional(Kind),
    tag: Type.Optional(
      Type.Array(Tag, { maxItems: LIMITS.tags, description: 'Memories with every tag given' }),
    ),
    agentId: Type.Optional(ExternalId),
    sessionId: Type.Optional(ExternalId),
    pinned: Type.Optional(Type.Boolean()),
    createdAfter: Type.Optional(DateTime),
    createdBefore: Type.Optional(DateTime),
    updatedAfter: Type.Optional(DateTime),
    updatedBefore: Type.Optional(DateTime),
  },
  { additionalProperties: false },
);

/** A page of memories. */
export const MemoryPage = Type.Object({
  items: Type.Array(Memory),
  nextCursor: Nullable(Type.String()),
});

/** History of a memory, oldest first. */
export const MemoryHistory = Type.Object({
  items: Type.Array(
    Type.Object({
      version: Type.Integer(),
      op: Type.String(),
      at: Type.String({ format: 'date-time' }),
      memory: Memory,
    }),
  ),
});

/** Path of routes on one user. */
export const UserParams = Type.Object({ userId: ExternalId });

/** Response of a user erasure. */
export const EraseResult = Type.Object({ userId: Type.String(), deleted: Type.Integer() });
