import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * A route `onSend` hook that adds `app;dur=<ms>` (the request's time in this server, from its
 * arrival to its serialized answer) to the route's own Server-Timing entries, if any.
 */
export function appTiming(
  _request: FastifyRequest,
  reply: FastifyReply,
  payload: unknown,
  done: (err: Error | null, payload: unknown) => void,
): void {
  const own = reply.getHeader('server-timing');
  const app = `app;dur=${reply.elapsedTime.toFixed(3)}`;
  reply.header('server-timing', own ? `${app}, ${own}` : app);
  done(null, payload);
}
