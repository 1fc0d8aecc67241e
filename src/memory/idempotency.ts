import { EngramError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import type { Clock } from '../util/clock.ts';
import type { IdempotencyRecord } from './memory-types.ts';

/** An Idempotency-Key with the fingerprint of the request that carried it. */
export interface IdempotencyRequest {
  key: string;
  fingerprint: string;
}

/** A response remembered for an Idempotency-Key. */
export interface Replay {
  status: number;
  /** Serialized JSON body. */
  body: string;
}

/**
 * Remembers the response of each keyed write so that a retry returns it instead of writing
 * again. The record is committed in the same transaction as the write it describes.
 */
export class Idempotency {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #ttlMs: number;

  constructor(store: Store, clock: Clock, ttlMs: number) {
    this.#store = store;
    this.#clock = clock;
    this.#ttlMs = ttlMs;
  }

  /** The remembered response for this key, or null; 422 when the key came with another request. */
  async replay(tenant: string, request: IdempotencyRequest): Promise<Replay | null> {
    const record = await this.#store.getIdempotency(tenant, request.key, this.#clock.now());
    if (!record) return null;
    if (record.fingerprint !== request.fingerprint) {
      throw new EngramError('ENGRAM_IDEMPOTENCY_KEY_REUSED');
    }
    return { status: record.status, body: record.body };
  }

  /** The record to commit with a write that answers `status` with `body`. */
  record(
    tenant: string,
    request: IdempotencyRequest,
    userId: string | null,
    status: number,
    body: unknown,
  ): IdempotencyRecord {
    const now = this.#clock.now();
    return {
      tenant,
      key: request.key,
      fingerprint: request.fingerprint,
      userId,
      status,
      body: JSON.stringify(body),
      createdAt: now,
      expiresAt: now + this.#ttlMs,
    };
  }
}
