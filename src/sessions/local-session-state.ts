import { LRUCache } from 'lru-cache';
import { userScope } from '../cache/cache-keys.ts';
import type { Clock } from '../util/clock.ts';
import {
  AFTER_EXPIRY_MS,
  ERASING_MS,
  type HotSession,
  type HotSessions,
  type WindowMessage,
} from './session-hot-state.ts';
import type { SessionRow } from './session-types.ts';

/** Bytes the copies may take in all (their windows' text, mostly). */
const MAX_BYTES = 16 * 2 ** 20;
/** Estimated bytes of a session row and an entry's upkeep. */
const ENTRY_BYTES = 600;
/** Estimated bytes of a window message beyond 2 B per character of its content. */
const MESSAGE_BYTES = 120;

interface Entry {
  session: SessionRow;
  /** By id order, the newest `window` messages at most. */
  window: WindowMessage[];
  /** When the copy is no longer served (its session's expiry, plus a minute). */
  until: number;
}

const byId = (a: WindowMessage, b: WindowMessage): number =>
  a.id < b.id ? -1 : a.id > b.id ? 1 : 0;

function sizeOf(entry: Entry): number {
  let bytes = ENTRY_BYTES;
  for (const m of entry.window) bytes += MESSAGE_BYTES + 2 * m.content.length;
  return bytes;
}

/**
 * Active sessions kept in this process, for embedded mode: one instance owns the SQLite file (as
 * its L1 cache assumes), so a copy here is as current as the store once every change of a
 * session goes through {@link HotSessions}, as the session service's do. An append then reads
 * no session from the store. The same rules as Redis's copies: a copy is replaced only by a
 * newer state, an ended one never, none is put while its user is being erased; copies are
 * bounded in bytes (least recently used go first) and stop being served a minute after their
 * session's expiry.
 */
export class LocalSessionState implements HotSessions {
  readonly source = 'memory' as const;
  readonly #window: number;
  readonly #clock: Clock;
  readonly #entries = new LRUCache<string, Entry>({
    maxSize: MAX_BYTES,
    sizeCalculation: sizeOf,
  });
  /** Users being erased (by scope), until when. */
  readonly #erasing = new Map<string, number>();

  constructor(window: number, clock: Clock) {
    this.#window = window;
    this.#clock = clock;
  }

  #key(tenant: string, id: string): string {
    return `${tenant}/${id}`;
  }

  #live(key: string, now: number): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.until > now) return entry;
    this.#entries.delete(key);
    return undefined;
  }

  #isErasing(tenant: string, userId: string, now: number): boolean {
    const scope = userScope(tenant, userId);
    const until = this.#erasing.get(scope);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#erasing.delete(scope);
    return false;
  }

  #until(session: SessionRow, now: number): number {
    return Math.max(now + 1000, session.expiresAt + AFTER_EXPIRY_MS);
  }

  async get(tenant: string, id: string): Promise<HotSession | null> {
    const entry = this.#live(this.#key(tenant, id), this.#clock.now());
    return entry ? { session: entry.session, window: entry.window } : null;
  }

  async put(session: SessionRow, now: number): Promise<void> {
    if (this.#isErasing(session.tenant, session.userId, now)) return;
    const key = this.#key(session.tenant, session.id);
    const held = this.#live(key, now);
    if (held) {
      const h = held.session;
      if (h.state !== 'active') return;
      const n = session.messageCount;
      if (
        h.messageCount > n ||
        (h.messageCount === n && h.lastActivityAt > session.lastActivityAt)
      ) {
        return;
      }
    }
    // Copies: what callers hold stays theirs, what is served here is not changed in place.
    this.#entries.set(key, {
      session: { ...session },
      window: held?.window ?? [],
      until: Math.max(held?.until ?? 0, this.#until(session, now)),
    });
  }

  async pushWindow(
    session: SessionRow,
    messages: WindowMessage[],
    now: number,
    replace = false,
  ): Promise<void> {
    if (messages.length === 0 && !replace) return;
    if (this.#isErasing(session.tenant, session.userId, now)) return;
    const key = this.#key(session.tenant, session.id);
    const held = this.#live(key, now);
    // Without a held state there is nothing to serve a window with (a state is put first).
    if (held?.session.state !== 'active') return;
    const merged = (replace ? [...messages] : [...held.window, ...messages]).sort(byId);
    const window = merged.length > this.#window ? merged.slice(-this.#window) : merged;
    this.#entries.set(key, {
      ...held,
      window,
      until: Math.max(held.until, this.#until(session, now)),
    });
  }

  async erasing(tenant: string, userId: string): Promise<boolean> {
    this.#erasing.set(userScope(tenant, userId), this.#clock.now() + ERASING_MS);
    return true;
  }

  async erased(tenant: string, userId: string, ids: string[]): Promise<boolean> {
    // The mark is shortened to a minute: a late write still in flight finds it.
    this.#erasing.set(userScope(tenant, userId), this.#clock.now() + AFTER_EXPIRY_MS);
    for (const id of ids) this.#entries.delete(this.#key(tenant, id));
    return true;
  }

  async ended(session: SessionRow): Promise<void> {
    const now = this.#clock.now();
    this.#entries.set(this.#key(session.tenant, session.id), {
      session: { ...session },
      window: [],
      until: now + AFTER_EXPIRY_MS,
    });
  }

  close(): void {
    this.#entries.clear();
    this.#erasing.clear();
  }
}
