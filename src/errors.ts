/**
 * The one catalog of Engram's stable error codes. Each code maps to one HTTP status and a
 * default message; `docs/errors.md` documents every code (a test keeps them in step).
 */
export const ErrorCatalog = {
  ENGRAM_VALIDATION_FAILED: { status: 400, message: 'The request is not valid.' },
  ENGRAM_MALFORMED_JSON: { status: 400, message: 'The body is not valid JSON.' },
  ENGRAM_INVALID_ENCODING: { status: 400, message: 'The body is not valid UTF-8.' },
  ENGRAM_JSON_TOO_DEEP: { status: 400, message: 'The JSON body is nested too deeply.' },
  ENGRAM_FORBIDDEN_KEY: {
    status: 400,
    message: 'Keys named __proto__ or constructor are not accepted.',
  },
  ENGRAM_INVALID_TEXT: {
    status: 400,
    message: 'Text must not contain NUL characters or unpaired surrogates.',
  },
  ENGRAM_INVALID_CURSOR: { status: 400, message: 'The pagination cursor is not valid.' },
  ENGRAM_INVALID_IF_MATCH: {
    status: 400,
    message: 'If-Match must be a memory version, as a number or an ETag.',
  },
  ENGRAM_INVALID_IDEMPOTENCY_KEY: {
    status: 400,
    message: 'Idempotency-Key must be 1 to 255 visible ASCII characters.',
  },
  ENGRAM_BAD_URL: { status: 400, message: 'The URL could not be decoded.' },
  ENGRAM_BAD_REQUEST: { status: 400, message: 'The HTTP request is malformed.' },
  ENGRAM_BATCH_REJECTED: {
    status: 400,
    message: 'The batch was rejected; nothing was written. See `items` for each problem.',
  },
  ENGRAM_UNAUTHORIZED: {
    status: 401,
    message: 'A valid API key is required (Authorization: Bearer <key>).',
  },
  ENGRAM_MEMORY_NOT_FOUND: { status: 404, message: 'No such memory.' },
  ENGRAM_SESSION_NOT_FOUND: { status: 404, message: 'No such session.' },
  ENGRAM_ROUTE_NOT_FOUND: { status: 404, message: 'No such route.' },
  ENGRAM_REQUEST_TIMEOUT: { status: 408, message: 'The request took too long to arrive.' },
  ENGRAM_SESSION_ENDED: {
    status: 409,
    message: 'The session has ended: it takes no more messages.',
  },
  ENGRAM_IDEMPOTENCY_IN_PROGRESS: {
    status: 409,
    message: 'A request with this Idempotency-Key is still being processed.',
  },
  ENGRAM_MEMORY_NOT_DELETED: {
    status: 409,
    message: 'The memory is not deleted; there is nothing to restore.',
  },
  ENGRAM_RESTORE_WINDOW_EXPIRED: {
    status: 410,
    message: 'The memory was deleted too long ago to be restored.',
  },
  ENGRAM_VERSION_CONFLICT: {
    status: 412,
    message: 'The memory has changed since the version given in If-Match.',
  },
  ENGRAM_BODY_TOO_LARGE: { status: 413, message: 'The request body is too large.' },
  ENGRAM_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: 'Send JSON bodies as Content-Type: application/json (UTF-8).',
  },
  ENGRAM_IDEMPOTENCY_KEY_REUSED: {
    status: 422,
    message: 'This Idempotency-Key was used with a different request.',
  },
  ENGRAM_HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are too large.' },
  ENGRAM_INTERNAL: { status: 500, message: 'Internal error.' },
  ENGRAM_STORE_UNAVAILABLE: {
    status: 503,
    message: 'The store is unavailable; retry later.',
  },
  ENGRAM_NOT_READY: { status: 503, message: 'Engram is not ready.' },
} as const satisfies Record<string, { status: number; message: string }>;

/** A stable error code from {@link ErrorCatalog}. */
export type ErrorCode = keyof typeof ErrorCatalog;

/** One problem of one field, reported in `details`. */
export interface ErrorDetail {
  /** JSON pointer into the request (e.g. `/body/items/3/content`). */
  path: string;
  message: string;
}

/** An error that Engram reports to clients with a stable code. */
export class EngramError extends Error {
  override name = 'EngramError';
  readonly code: ErrorCode;
  readonly status: number;
  /** Field-level problems, when the code concerns input. */
  readonly details: ErrorDetail[] | undefined;
  /** Extra fields for the error body (e.g. per-item batch reports). */
  readonly extra: Record<string, unknown> | undefined;
  /** Response headers to set (e.g. Retry-After). */
  readonly headers: Record<string, string> | undefined;

  constructor(
    code: ErrorCode,
    options: {
      message?: string;
      details?: ErrorDetail[];
      extra?: Record<string, unknown>;
      headers?: Record<string, string>;
      cause?: unknown;
    } = {},
  ) {
    super(options.message ?? ErrorCatalog[code].message, { cause: options.cause });
    this.code = code;
    this.status = ErrorCatalog[code].status;
    this.details = options.details;
    this.extra = options.extra;
    this.headers = options.headers;
  }
}

/** The JSON body of every error response. */
export interface ErrorBody {
  error: {
    code: ErrorCode;
    message: string;
    requestId: string;
    details?: ErrorDetail[];
    [extra: string]: unknown;
  };
}

/** Renders an {@link EngramError} as the public error body. */
export function errorBody(err: EngramError, requestId: string): ErrorBody {
  const body: ErrorBody = {
    error: { ...err.extra, code: err.code, message: err.message, requestId },
  };
  if (err.details && err.details.length > 0) body.error.details = err.details;
  return body;
}
