import { Type } from 'typebox';
import { LIMITS } from '../../memory/memory-rules.ts';
import { DateTime, ExternalId, MemoryId } from './common-schemas.ts';
import { Memory } from './memory-schemas.ts';

/** Default budget of a preload bundle, in characters of memory content. */
export const DEFAULT_BUDGET_CHARS = 4000;
/** Most messages appended in one request. */
export const MAX_MESSAGES = 100;

/** Body of a session start. */
export const NewSession = Type.Object(
  {
    userId: ExternalId,
    agentId: Type.Optional(ExternalId),
    context: Type.Optional(
      Type.String({
        maxLength: LIMITS.contentBytes,
        description: 'Text of the opening message: the most relevant memories are preloaded',
      }),
    ),
    budget: Type.Optional(
      Type.Object(
        {
          chars: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
          tokens: Type.Optional(
            Type.Integer({ minimum: 0, maximum: 250_000, description: '≈ 4 characters each' }),
          ),
        },
        {
          additionalProperties: false,
          description: `Size of the preload bundle (default ${DEFAULT_BUDGET_CHARS} characters)`,
        },
      ),
    ),
  },
  { additionalProperties: false },
);

/** Body of a message append. */
export const NewMessages = Type.Object(
  {
    messages: Type.Array(
      Type.Object(
        {
          role: Type.Union([
            Type.Literal('user'),
            Type.Literal('assistant'),
            Type.Literal('system'),
            Type.Literal('tool'),
          ]),
          content: Type.String({ minLength: 1, maxLength: LIMITS.contentBytes }),
          at: Type.Optional(DateTime),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: MAX_MESSAGES },
    ),
  },
  { additionalProperties: false },
);

/** Path of routes on one session. */
export const SessionParams = Type.Object({ id: MemoryId });

const TimeoutBasis = Type.Object({
  source: Type.String(),
  withinGaps: Type.Number(),
  betweenGaps: Type.Number(),
  quantile: Type.Number(),
  quantileMs: Type.Union([Type.Number(), Type.Null()]),
  margin: Type.Number(),
  clamped: Type.Union([Type.String(), Type.Null()]),
  betweenMedianMs: Type.Union([Type.Number(), Type.Null()]),
});

/** A session as returned by the API. */
export const Session = Type.Object({
  id: Type.String(),
  userId: Type.String(),
  agentId: Type.Union([Type.String(), Type.Null()]),
  state: Type.String({ description: 'active, ended or expired' }),
  createdAt: Type.String({ format: 'date-time' }),
  lastActivityAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
  endedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  timeout: Type.Object({ ms: Type.Integer(), basis: TimeoutBasis }),
  messageCount: Type.Integer(),
  summaryId: Type.Union([Type.String(), Type.Null()]),
});

/** Response of a session start. */
export const StartedSession = Type.Object({
  session: Session,
  preload: Type.Object({
    items: Type.Array(Type.Object({ memory: Memory, reasons: Type.Array(Type.String()) })),
    budgetChars: Type.Integer(),
    usedChars: Type.Integer(),
    truncated: Type.Boolean(),
    source: Type.String({
      description:
        'index: from the held in-process index; built: from the index built for this start (a small cold user); store: from store queries (a larger cold user)',
    }),
  }),
});

/** A session with its recent messages. */
export const SessionWithWindow = Type.Object({
  session: Session,
  window: Type.Array(
    Type.Object({
      id: Type.String(),
      role: Type.String(),
      content: Type.String(),
      at: Type.String({ format: 'date-time' }),
    }),
  ),
  source: Type.String({
    description: 'where the session was read from: redis, memory (embedded mode) or store',
  }),
});

/** Response of a session end. */
export const EndedSession = Type.Object({
  session: Session,
  summary: Type.Union([Memory, Type.Null()]),
});

/** One session. */
export const OneSession = Type.Object({ session: Session });

/** A page of sessions. */
export const SessionPage = Type.Object({
  items: Type.Array(Session),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});

/** Page of a session listing. */
export const SessionListQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
    cursor: Type.Optional(Type.String({ maxLength: 128 })),
  },
  { additionalProperties: false },
);
