import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { EngramError, type ErrorCode, type ErrorDetail, errorBody } from '../errors.ts';
import { isStoreUnavailable } from '../store/store.ts';

// Fastify's own error codes, mapped to ours.
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'ENGRAM_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'ENGRAM_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_TYPE: 'ENGRAM_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'ENGRAM_MALFORMED_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'ENGRAM_BAD_REQUEST',
  FST_ERR_BAD_URL: 'ENGRAM_BAD_URL',
  FST_ERR_ASYNC_CONSTRAINT: 'ENGRAM_BAD_REQUEST',
};

interface ValidationIssue {
  instancePath: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** Field-level details from an ajv validation error. */
export function validationDetails(
  issues: readonly ValidationIssue[],
  context: string | undefined,
): ErrorDetail[] {
  return issues.map((issue) => {
    const missing = issue.params?.missingProperty;
    const extra = issue.params?.additionalProperty;
    const suffix = typeof missing === 'string' ? `/${missing}` : '';
    const message =
      typeof extra === 'string' ? `unknown property "${extra}"` : (issue.message ?? 'is invalid');
    return { path: `/${context ?? 'body'}${issue.instancePath}${suffix}`, message };
  });
}

/** Turns any thrown value into an {@link EngramError}; unknown failures become ENGRAM_INTERNAL. */
export function toEngramError(err: unknown): EngramError {
  if (err instanceof EngramError) return err;
  if (isStoreUnavailable(err)) {
    return new EngramError('ENGRAM_STORE_UNAVAILABLE', {
      headers: { 'retry-after': '1' },
      cause: err,
    });
  }
  const fe = err as Partial<FastifyError> & { validation?: ValidationIssue[] };
  if (fe?.validation) {
    return new EngramError('ENGRAM_VALIDATION_FAILED', {
      details: validationDetails(fe.validation, fe.validationContext),
    });
  }
  const mapped = fe?.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new EngramError(mapped, { cause: err });
  if (fe?.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new EngramError('ENGRAM_BAD_REQUEST', { cause: err });
  }
  return new EngramError('ENGRAM_INTERNAL', { cause: err });
}

/** Sends an error as `{error: {code, message, requestId}}`. */
export function sendError(
  request: FastifyRequest,
  reply: FastifyReply,
  err: unknown,
): FastifyReply {
  const engramError = toEngramError(err);
  if (engramError.status >= 500) {
    request.log.error({ err }, 'request failed');
  }
  if (engramError.headers) reply.headers(engramError.headers);
  return reply
    .code(engramError.status)
    .type('application/json; charset=utf-8')
    .send(errorBody(engramError, request.id));
}

/** Installs the one error handler and the not-found handler. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => sendError(request, reply, err));
  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, new EngramError('ENGRAM_ROUTE_NOT_FOUND')),
  );
}

/** Fastify's `frameworkErrors` option: bad URLs and the like get our error body too. */
export function frameworkErrors(
  err: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  // These replies skip the app's hooks, including the one that sets the request id header.
  reply.header('x-request-id', request.id);
  sendError(request, reply, err);
}

/**
 * Fastify's `clientErrorHandler`: errors Node's HTTP parser raises before there is a request
 * (oversized headers, request timeouts, garbage). Answers with our error body and closes.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) return;
  const code: ErrorCode =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? 'ENGRAM_HEADERS_TOO_LARGE'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'ENGRAM_REQUEST_TIMEOUT'
        : 'ENGRAM_BAD_REQUEST';
  const error = new EngramError(code);
  const body = JSON.stringify(errorBody(error, randomUUID()));
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
