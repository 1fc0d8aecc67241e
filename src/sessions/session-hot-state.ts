import type { Redis } from 'ioredis';
import { withDeadline } from '../cache/deadline.ts';
import type { SessionRow } from './session-types.ts';

/** A message of a session's recent window, as kept hot. */
export interface WindowMessage {
  id: string;
  role: string;
  content: string;
  at: number;
}

/** A session with its recent messages, as any instance can read it from Redis. */
export interface HotSession {
  session: SessionRow;
  window: WindowMessage[];
}

/** How long a hot entry outlives its session's expiry (so that a late read still finds it). */
export const AFTER_EXPIRY_MS = 60_000;

/** How long a user being erased stays marked if the erasure never finishes (a crash). */
export const ERASING_MS = 600_000;

/**
 * Where active sessions are kept hot, so that their messages and views skip the store: Redis,
 * for any instance ({@link SessionHotState}), or this process in embedded mode (one instance;
 * `LocalSessionState`). The store stays the system of record: a miss reads it.
 */
export interface HotSessions {
  /** What a view read from here reports as its source. */
  readonly source: 'redis' | 'memory';
  /** The hot copy of a session with its window (by id order), or null when not held. */
  get(tenant: string, id: string): Promise<HotSession | null>;
  /** Stores the session's state, unless a newer one is held (or its user is being erased). */
  put(session: SessionRow, now: number): Promise<void>;
  /** Adds messages to the window (the newest kept); `replace` sets it to exactly `messages`. */
  pushWindow(
    session: SessionRow,
    messages: WindowMessage[],
    now: number,
    replace?: boolean,
  ): Promise<void>;
  /** Marks a user as being erased: no copy of their sessions is put from then on. */
  erasing(tenant: string, userId: string): Promise<boolean>;
  /** Forgets an erased user's sessions; the user stays marked a minute more. */
  erased(tenant: string, userId: string, ids: string[]): Promise<boolean>;
  /** Marks a session ended (an ended copy is never replaced) and drops its window. */
  ended(session: SessionRow): Promise<void>;
  close(): void;
}

/**
 * Sets the session's copy (KEYS[1]) unless the held one is newer: an ended copy is never
 * replaced, and an active one only by a copy with more messages, or as many and later
 * activity. Concurrent writers (requests on several instances) thus cannot put an older state
 * back. Nothing is set while the session's user is being erased, or was a minute ago (KEYS[2]).
 */
const PUT_IF_NEWER = `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local held = redis.call('GET', KEYS[1])
if held then
  local h = cjson.decode(held)
  if h.state ~= 'active' then return 0 end
  local n, t = tonumber(ARGV[2]), tonumber(ARGV[3])
  if h.messageCount > n or (h.messageCount == n and h.lastActivityAt > t) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
return 1`;

/**
 * Adds messages to a session's window (KEYS[2]), unless its state (KEYS[1]) is held and not
 * active, or its user is being erased (KEYS[3]): an ended or erased session's window is not
 * written back by a late append. ARGV: 1 to replace the window, the window's length, its time
 * to live, then the messages.
 */
const PUSH_WINDOW = `
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local held = redis.call('GET', KEYS[1])
if held and cjson.decode(held).state ~= 'active' then return 0 end
if ARGV[1] == '1' then redis.call('DEL', KEYS[2]) end
for i = 4, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1`;

/** The state kept for an erased session: no data of it, only that it must not come back. */
const ERASED = JSON.stringify({ state: 'erased' });

/**
 * Session state and the recent-messages window in Redis, so that any instance serves any
 * session without the store. The state is one key (replaced only by a newer state); the window
 * is a list that appends push to and trim (so concurrent appends never overwrite each other).
 * The store stays the system of record: every failure here (Redis down, slow, evicted) is a
 * miss, never an error. Entries expire with the session's own adaptive timeout (plus a minute).
 */
export class SessionHotState implements HotSessions {
  readonly source = 'redis' as const;
  readonly #redis: Redis;
  readonly #window: number;
  readonly #deadlineMs: number;
  /** Redis failures seen (reads and writes, no answer by the deadline included). */
  failures = 0;

  /** @param deadlineMs each command's deadline (`withDeadline`: a stalled loop is no failure) */
  constructor(redis: Redis, window: number, deadlineMs: number) {
    this.#redis = redis;
    this.#window = window;
    this.#deadlineMs = deadlineMs;
  }

  #key(tenant: string, id: string): string {
    return `engram:session:${tenant}/${id}`;
  }

  /** Set while a user is being erased, and for a minute after. */
  #erasingKey(tenant: string, userId: string): string {
    return `engram:erasing:${tenant}/${userId}`;
  }

  #ttl(session: SessionRow, now: number): number {
    return Math.max(1000, session.expiresAt - now + AFTER_EXPIRY_MS);
  }

  /** The hot copy of a session with its window (by id order), or null when not held. */
  async get(tenant: string, id: string): Promise<HotSession | null> {
    const key = this.#key(tenant, id);
    try {
      const answers = await withDeadline(
        this.#redis.multi().get(key).lrange(`${key}:w`, 0, -1).exec(),
        this.#deadlineMs,
      );
      const state = answers?.[0]?.[1] as string | null | undefined;
      if (!state) return null;
      const window = ((answers?.[1]?.[1] as string[] | undefined) ?? [])
        .map((m) => JSON.parse(m) as WindowMessage)
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return { session: JSON.parse(state) as SessionRow, window };
    } catch {
      this.failures++;
      return null;
    }
  }

  /** Stores the session's state, unless Redis holds a newer one. */
  async put(session: SessionRow, now: number): Promise<void> {
    try {
      await withDeadline(
        this.#redis.eval(
          PUT_IF_NEWER,
          2,
          this.#key(session.tenant, session.id),
          this.#erasingKey(session.tenant, session.userId),
          JSON.stringify(session),
          session.messageCount,
          session.lastActivityAt,
          this.#ttl(session, now),
        ),
        this.#deadlineMs,
      );
    } catch {
      this.failures++;
    }
  }

  /**
   * Adds messages to the session's window (kept to the newest `window`). With `replace`, the
   * window is set to exactly `messages` (when Redis did not hold it: read from the store).
   */
  async pushWindow(
    session: SessionRow,
    messages: WindowMessage[],
    now: number,
    replace = false,
  ): Promise<void> {
    if (messages.length === 0 && !replace) return;
    const key = this.#key(session.tenant, session.id);
    try {
      await withDeadline(
        this.#redis.eval(
          PUSH_WINDOW,
          3,
          key,
          `${key}:w`,
          this.#erasingKey(session.tenant, session.userId),
          replace ? '1' : '0',
          this.#window,
          this.#ttl(session, now),
          ...messages.map((m) => JSON.stringify(m)),
        ),
        this.#deadlineMs,
      );
    } catch {
      this.failures++;
    }
  }

  /**
   * Marks a user as being erased, before their sessions are listed: from then on no instance
   * puts a copy of their sessions here (a start racing the erasure would otherwise leave one
   * the listing missed). False when Redis did not answer.
   */
  async erasing(tenant: string, userId: string): Promise<boolean> {
    try {
      await withDeadline(
        this.#redis.set(this.#erasingKey(tenant, userId), '1', 'PX', ERASING_MS),
        this.#deadlineMs,
      );
      return true;
    } catch {
      this.failures++;
      return false;
    }
  }

  /**
   * Forgets an erased user's sessions: their windows are deleted and their states replaced by
   * a mark that no later write replaces, and the user stays marked for a minute more (late
   * appends or starts on other instances). False when Redis did not answer (the copies then
   * last until their own expiry).
   */
  async erased(tenant: string, userId: string, ids: string[]): Promise<boolean> {
    try {
      const tx = this.#redis.multi();
      tx.set(this.#erasingKey(tenant, userId), '1', 'PX', AFTER_EXPIRY_MS);
      for (const id of ids) {
        const key = this.#key(tenant, id);
        tx.set(key, ERASED, 'PX', AFTER_EXPIRY_MS).del(`${key}:w`);
      }
      await withDeadline(tx.exec(), this.#deadlineMs);
      return true;
    } catch {
      this.failures++;
      return false;
    }
  }

  /** Marks a session ended (an ended copy is never replaced) and drops its window. */
  async ended(session: SessionRow): Promise<void> {
    const key = this.#key(session.tenant, session.id);
    try {
      await withDeadline(
        this.#redis
          .multi()
          .set(key, JSON.stringify(session), 'PX', AFTER_EXPIRY_MS)
          .del(`${key}:w`)
          .exec(),
        this.#deadlineMs,
      );
    } catch {
      this.failures++;
    }
  }

  close(): void {
    this.#redis.disconnect();
  }
}
