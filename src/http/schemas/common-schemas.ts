import { Type } from 'typebox';
import { MEMORY_ID_PATTERN } from '../../memory/ids.ts';

/**
 * Pattern of user, agent and session ids chosen by clients. `.` and `..` are excluded: URL
 * clients normalize them away, so such a user could never be listed or erased.
 */
export const EXTERNAL_ID_PATTERN = '^(?!\\.\\.?$)[A-Za-z0-9_.:@+=|-]{1,128}$';

/** A user, agent or session id chosen by the client. */
export const ExternalId = Type.String({
  pattern: EXTERNAL_ID_PATTERN,
  maxLength: 128,
  description: 'Client-chosen id: 1–128 of A–Z a–z 0–9 _ . : @ + = | - (not . or ..)',
});

/** A memory id (ULID). */
export const MemoryId = Type.String({
  pattern: MEMORY_ID_PATTERN,
  maxLength: 26,
  description: 'Memory id (ULID, sortable by creation time)',
});

/** An ISO-8601 date-time. */
export const DateTime = Type.String({ format: 'date-time', maxLength: 64 });

/** The body of every error response. */
export const ErrorResponse = Type.Object(
  {
    error: Type.Object(
      {
        code: Type.String(),
        message: Type.String(),
        requestId: Type.String(),
        details: Type.Optional(
          Type.Array(Type.Object({ path: Type.String(), message: Type.String() })),
        ),
      },
      { additionalProperties: true },
    ),
  },
  { description: 'Error: a stable code, a message and the request id' },
);

/** Error responses shared by every authenticated route. */
export const errorResponses = {
  400: ErrorResponse,
  401: ErrorResponse,
  404: ErrorResponse,
  413: ErrorResponse,
  415: ErrorResponse,
  500: ErrorResponse,
  503: ErrorResponse,
};

/** Headers accepted by writes. */
export const WriteHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ description: 'Retry-safe key: a retried write returns the first result' }),
  ),
});

/** Headers accepted by writes on one memory. */
export const IfMatchHeaders = Type.Object({
  ...WriteHeaders.properties,
  'if-match': Type.Optional(
    Type.String({ description: 'Expected memory version, e.g. "3" (412 when it changed)' }),
  ),
});
