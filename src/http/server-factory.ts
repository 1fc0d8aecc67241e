import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { FastifyServerFactory } from 'fastify';
import type { FastPath } from './fast-path.ts';

/** Limits of the HTTP server itself, below Fastify. */
export interface ServerLimits {
  /** Whole-request deadline; slow bodies are cut with 408. */
  requestTimeoutMs: number;
  /** Larger header blocks are refused with 431. */
  maxHeaderBytes: number;
  /** Answers warm reads before Fastify (see fast-path.ts); set once the app is built. */
  fastPath?: { current: FastPath | undefined };
}

/**
 * Builds the node:http server with explicit timeouts. Node checks request deadlines only every
 * `connectionsCheckingInterval` (30 s by default), so it is tightened to match the deadline.
 */
export function serverFactory(limits: ServerLimits): FastifyServerFactory {
  return (handler) =>
    createServer(
      {
        requestTimeout: limits.requestTimeoutMs,
        headersTimeout: Math.min(limits.requestTimeoutMs, 60_000),
        maxHeaderSize: limits.maxHeaderBytes,
        connectionsCheckingInterval: Math.max(100, Math.min(1_000, limits.requestTimeoutMs / 4)),
        keepAliveTimeout: 72_000,
      },
      (req: IncomingMessage, res: ServerResponse) => {
        if (limits.fastPath?.current?.(req, res)) return;
        (handler as (req: IncomingMessage, res: ServerResponse) => void)(req, res);
      },
    ) as Server;
}
