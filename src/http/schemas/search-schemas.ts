import { Type } from 'typebox';
import { LIMITS } from '../../memory/memory-rules.ts';
import { SIGNALS } from '../../search/fusion.ts';
import { ExternalId } from './common-schemas.ts';
import { ListQuery, Memory, Tag } from './memory-schemas.ts';

/** Longest accepted query, in characters. */
export const QUERY_MAX_LENGTH = 2000;
/** Most results of one search. */
export const SEARCH_MAX_K = 100;

const Weight = Type.Number({ minimum: 0, maximum: 10 });
const signalObject = <T extends Parameters<typeof Type.Object>[0][string]>(schema: () => T) =>
  Object.fromEntries(SIGNALS.map((name) => [name, schema()])) as Record<
    (typeof SIGNALS)[number],
    T
  >;

const Filters = ListQuery.properties;

/** Body of a search: the query, how many results, the list route's filters, and ranking knobs. */
export const SearchBody = Type.Object(
  {
    query: Type.String({
      maxLength: QUERY_MAX_LENGTH,
      description: 'Free text; empty ranks by the other signals (recency, importance, pinned, use)',
    }),
    k: Type.Integer({ minimum: 1, maximum: SEARCH_MAX_K, default: 10 }),
    kind: Filters.kind,
    tags: Type.Optional(
      Type.Array(Tag, { maxItems: LIMITS.tags, description: 'Memories with every tag given' }),
    ),
    agentId: Type.Optional(ExternalId),
    sessionId: Type.Optional(ExternalId),
    pinned: Filters.pinned,
    createdAfter: Filters.createdAfter,
    createdBefore: Filters.createdBefore,
    updatedAfter: Filters.updatedAfter,
    updatedBefore: Filters.updatedBefore,
    weights: Type.Optional(
      Type.Object(
        signalObject(() => Type.Optional(Weight)),
        { additionalProperties: false, description: 'Weights of the signals, over the defaults' },
      ),
    ),
    fusion: Type.Optional(
      Type.Union([Type.Literal('weighted'), Type.Literal('rrf')], {
        description: 'Normalized weighted sum (default) or reciprocal rank fusion',
      }),
    ),
    explain: Type.Boolean({ default: false, description: 'Add each signal, its weight and share' }),
  },
  { additionalProperties: false },
);

const SignalExplanation = Type.Object({
  value: Type.Number(),
  weight: Type.Number(),
  contribution: Type.Number(),
});

/** Why a memory ranked where it did. */
export const Explanation = Type.Object({
  signals: Type.Object(signalObject(() => SignalExplanation)),
  matchedTerms: Type.Array(Type.String()),
  bm25: Type.Number({ description: 'Text score before normalization' }),
  context: Type.Number({ description: 'Text score given by neighbouring messages of a session' }),
});

/** The answer of a search. */
export const SearchResponse = Type.Object({
  items: Type.Array(
    Type.Object({
      memory: Memory,
      score: Type.Number(),
      explain: Type.Optional(Explanation),
    }),
  ),
  terms: Type.Array(Type.String()),
  fusion: Type.String(),
  weights: Type.Object(signalObject(() => Type.Number())),
  source: Type.String({ description: 'index: in-process index; fulltext: the store’s index' }),
  vector: Type.Boolean({ description: 'Whether vector similarity took part' }),
});
