import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { EngramError } from '../errors.ts';
import type { Idempotency, IdempotencyRequest, Replay } from '../memory/idempotency.ts';
import { IdempotencyKeyTaken } from '../store/store.ts';

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** The Idempotency-Key of a request with its fingerprint, or undefined when none was sent. */
export function idempotencyOf(request: FastifyRequest): IdempotencyRequest | undefined {
  const key = request.headers['idempotency-key'];
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || !KEY_PATTERN.test(key)) {
    throw new EngramError('ENGRAM_INVALID_IDEMPOTENCY_KEY');
  }
  const fingerprint = createHash('sha256')
    .update(request.method)
    .update('\0')
    .update(request.routeOptions.url ?? '')
    .update('\0')
    .update(JSON.stringify(request.params ?? {}))
    .update('\0')
    .update(JSON.stringify(request.body ?? null))
    .digest('base64url');
  return { key, fingerprint };
}

function sendReplay(reply: FastifyReply, replay: Replay): FastifyReply {
  return reply
    .code(replay.status)
    .header('idempotent-replayed', 'true')
    .type('application/json; charset=utf-8')
    .serializer((payload: unknown) => payload as string)
    .send(replay.body);
}

/**
 * Runs a write under the request's Idempotency-Key: a retry gets the first response (marked
 * `Idempotent-Replayed: true`) and writes nothing; a concurrent duplicate that lost the race
 * for the key gets the winner's response.
 */
export async function idempotent<T>(
  idempotency: Idempotency,
  tenant: string,
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  write: (idem: IdempotencyRequest | undefined) => Promise<T>,
): Promise<T | FastifyReply> {
  const idem = idempotencyOf(request);
  if (idem) {
    const earlier = await idempotency.replay(tenant, idem);
    if (earlier) return sendReplay(reply, earlier);
  }
  try {
    const result = await write(idem);
    reply.code(status);
    return result;
  } catch (err) {
    if (!(err instanceof IdempotencyKeyTaken) || !idem) throw err;
    const winner = await idempotency.replay(tenant, idem);
    if (winner) return sendReplay(reply, winner);
    throw new EngramError('ENGRAM_IDEMPOTENCY_IN_PROGRESS', { headers: { 'retry-after': '1' } });
  }
}
