import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiKeyRow } from '../memory/memory-types.ts';
import { isStoreUnavailable, type Store } from '../store/store.ts';
import type { Clock } from '../util/clock.ts';

/** Pattern of a tenant name. */
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

// egm_<12 hex id>_<43 base64url secret>: the id finds the row, the secret is compared hashed.
const KEY_PATTERN = /^egm_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

/** A key as created: `key` is shown once and never stored. */
export interface CreatedKey {
  id: string;
  tenant: string;
  key: string;
}

interface CacheEntry {
  row: ApiKeyRow | null;
  expiresAt: number;
}

/**
 * API keys: random 256-bit secrets, stored as SHA-256 hashes (a fast hash suffices for
 * high-entropy secrets), compared in constant time. Verified rows are cached briefly so that
 * authentication costs no store query per request; a revocation reaches other instances
 * within the cache TTL.
 */
export class ApiKeys {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #cacheTtlMs: number;
  readonly #cache = new Map<string, CacheEntry>();
  // Keys already verified (by constant-time comparison of their hash): the hot path then costs
  // one map lookup instead of a SHA-256 per request. Same TTL as the row cache.
  readonly #verified = new Map<string, { tenant: string; expiresAt: number }>();
  static readonly #maxCached = 10_000;

  constructor(store: Store, clock: Clock, cacheTtlMs = 30_000) {
    this.#store = store;
    this.#clock = clock;
    this.#cacheTtlMs = cacheTtlMs;
  }

  /** Creates a key for `tenant`; the returned text is the only copy of the secret. */
  async create(tenant: string, label: string | null = null): Promise<CreatedKey> {
    if (!TENANT_PATTERN.test(tenant)) {
      throw new RangeError(`tenant must match ${TENANT_PATTERN} (got ${JSON.stringify(tenant)})`);
    }
    const id = randomBytes(6).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    await this.#store.insertApiKey({
      id,
      tenant,
      hash: sha256(secret),
      label,
      createdAt: this.#clock.now(),
      revokedAt: null,
    });
    return { id, tenant, key: `egm_${id}_${secret}` };
  }

  /** The tenant of a key verified within the cache TTL, without waiting; else undefined. */
  verifiedTenant(key: string): string | undefined {
    const verified = this.#verified.get(key);
    return verified && verified.expiresAt > this.#clock.now() ? verified.tenant : undefined;
  }

  /** The tenant of a valid, unrevoked key, or null. */
  async authenticate(key: string): Promise<string | null> {
    const now = this.#clock.now();
    const verified = this.#verified.get(key);
    if (verified && verified.expiresAt > now) return verified.tenant;
    let tenant: string | null;
    try {
      tenant = await this.#verify(key);
    } catch (err) {
      // While the store cannot be asked, a key verified before stays accepted: reads are then
      // served from cache within grace (writes fail on the store anyway).
      if (verified && isStoreUnavailable(err)) return verified.tenant;
      throw err;
    }
    if (tenant !== null) {
      if (this.#verified.size >= ApiKeys.#maxCached) this.#verified.clear();
      this.#verified.set(key, { tenant, expiresAt: now + this.#cacheTtlMs });
    }
    return tenant;
  }

  async #verify(key: string): Promise<string | null> {
    const match = KEY_PATTERN.exec(key);
    if (!match) return null;
    const [, id, secret] = match as unknown as [string, string, string];
    const row = await this.#lookup(id);
    if (!row || row.revokedAt !== null) return null;
    return timingSafeEqual(sha256(secret), row.hash) ? row.tenant : null;
  }

  async #lookup(id: string): Promise<ApiKeyRow | null> {
    const now = this.#clock.now();
    const cached = this.#cache.get(id);
    if (cached && cached.expiresAt > now) return cached.row;
    const row = await this.#store.findApiKey(id);
    if (this.#cache.size >= ApiKeys.#maxCached) this.#cache.clear();
    this.#cache.set(id, { row, expiresAt: now + this.#cacheTtlMs });
    return row;
  }

  /** Every key, without secrets. */
  list(): Promise<ApiKeyRow[]> {
    return this.#store.listApiKeys();
  }

  /** Revokes a key; false when no active key has this id. */
  async revoke(id: string): Promise<boolean> {
    this.#cache.delete(id);
    for (const key of this.#verified.keys()) {
      if (key.startsWith(`egm_${id}_`)) this.#verified.delete(key);
    }
    return this.#store.revokeApiKey(id, this.#clock.now());
  }

  /** Whether at least one unrevoked key exists. */
  async anyActive(): Promise<boolean> {
    return (await this.#store.listApiKeys()).some((k) => k.revokedAt === null);
  }
}
