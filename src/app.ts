import { randomUUID } from 'node:crypto';
import AjvCompiler from '@fastify/ajv-compiler';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { ServiceContext } from './context.ts';
import { EngramError } from './errors.ts';
import { requireApiKey } from './http/auth-hook.ts';
import { clientErrorHandler, frameworkErrors, installErrorHandling } from './http/error-handler.ts';
import { createFastPath, type FastPath } from './http/fast-path.ts';
import { checkText, isUtf8ContentType, parseJsonBody } from './http/json-body.ts';
import { registerOpenApi } from './http/openapi.ts';
import { healthRoutes } from './http/routes/health-routes.ts';
import { memoryRoutes } from './http/routes/memory-routes.ts';
import { searchRoutes } from './http/routes/search-routes.ts';
import { sessionRoutes } from './http/routes/session-routes.ts';
import { statsRoutes } from './http/routes/stats-routes.ts';
import { userRoutes } from './http/routes/user-routes.ts';
import { serverFactory } from './http/server-factory.ts';

/** Version reported in the OpenAPI document. */
export const ENGRAM_VERSION = '0.1.0';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Requests slower than this are logged at warn. */
const SLOW_REQUEST_MS = 250;

/** A client's X-Request-Id when it is sane, else a new UUID. */
function requestId(req: { headers: Record<string, string | string[] | undefined> }): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/** Rejects NUL and unpaired surrogates in the query string and path parameters. */
function checkStrings(value: unknown, path: string): void {
  if (typeof value === 'string') checkText(value, path);
  else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) checkStrings(value[i], `${path}/${i}`);
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) checkStrings(v, `${path}/${k}`);
  }
}

/** Whether every percent-escape of a URL part decodes to well-formed UTF-8. */
function decodable(text: string): boolean {
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

const AJV_OPTIONS = { removeAdditional: false, coerceTypes: 'array', allErrors: false } as const;

/** Builds the Fastify app from a service context; tests call `inject()` on it without a socket. */
export async function buildApp(ctx: ServiceContext): Promise<FastifyInstance> {
  const { config } = ctx;
  const fastPath: { current: FastPath | undefined } = { current: undefined };
  // Fastify's own ajv validator factory (one ajv per set of options).
  const ajvCompilers = AjvCompiler();
  const app = Fastify({
    loggerInstance: ctx.logger as FastifyBaseLogger,
    // One line per request from our onResponse hook instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    serverFactory: serverFactory({
      requestTimeoutMs: config.requestTimeoutMs,
      maxHeaderBytes: config.maxHeaderBytes,
      fastPath,
    }),
    // Long ids must reach schema validation (a clear 400), not fall through to a 404.
    routerOptions: { maxParamLength: config.maxHeaderBytes },
    genReqId: requestId,
    frameworkErrors,
    clientErrorHandler,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: AJV_OPTIONS },
    // Query strings, params and headers are text and are coerced (`limit=10`, `tag=a`); a JSON
    // body keeps its types: `"content": 5` or `"importance": null` is a 400, not "5" or 0.
    schemaController: {
      compilersFactory: {
        buildValidator: (externalSchemas, options) => {
          const coercing = ajvCompilers(externalSchemas, options);
          const exact = ajvCompilers(externalSchemas, {
            customOptions: { ...AJV_OPTIONS, coerceTypes: false },
          });
          return (route) => (route.httpPart === 'body' ? exact : coercing)(route);
        },
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  installErrorHandling(app);
  // Once shutdown starts, answers close their connection: a keep-alive client whose request
  // was in flight would otherwise hold the server open until the shutdown deadline.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
  // Access lines cost a fifth of a warm read's time: every request at debug, slow ones at warn
  // (errors are logged where they are handled).
  const accessLog = ctx.logger.isLevelEnabled('debug');
  // Warm reads skip the framework, except while shutting down (Fastify then answers 503) and
  // when every request must leave an access line.
  fastPath.current = createFastPath(
    ctx.keys,
    ctx.reads,
    ctx.cache.stack.counters,
    () => !closing && !accessLog,
  );
  app.addHook('onResponse', (request, reply, done) => {
    const ms = reply.elapsedTime;
    const level = ms >= SLOW_REQUEST_MS ? 'warn' : 'debug';
    if (level === 'warn' || accessLog) {
      request.log[level](
        {
          method: request.method,
          route: request.routeOptions.url ?? 'unmatched',
          status: reply.statusCode,
          ms: Math.round(ms * 100) / 100,
        },
        ms >= SLOW_REQUEST_MS ? 'slow request' : 'request',
      );
    }
    done();
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    if (!isUtf8ContentType(request.headers['content-type'])) {
      done(new EngramError('ENGRAM_UNSUPPORTED_MEDIA_TYPE'), undefined);
      return;
    }
    try {
      done(null, parseJsonBody(body as Buffer));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  await registerOpenApi(app, ENGRAM_VERSION);
  await app.register(healthRoutes(ctx));
  await app.register(async (v1) => {
    requireApiKey(v1, ctx.keys);
    v1.addHook('preValidation', (request, _reply, done) => {
      // The query parser keeps undecodable escapes (`%ED%A0%80`, `%E0%A4%A`) as literal text.
      const query = request.url.indexOf('?');
      if (
        query !== -1 &&
        request.url.includes('%', query) &&
        !decodable(request.url.slice(query + 1))
      ) {
        done(new EngramError('ENGRAM_BAD_URL'));
        return;
      }
      try {
        checkStrings(request.params, '/params');
        checkStrings(request.query, '/querystring');
        done();
      } catch (err) {
        done(err as Error);
      }
    });
    await v1.register(memoryRoutes(ctx));
    await v1.register(userRoutes(ctx));
    await v1.register(searchRoutes(ctx));
    await v1.register(sessionRoutes(ctx));
    await v1.register(statsRoutes(ctx));
  });
  return app;
}
