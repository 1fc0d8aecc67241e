import type { ActivityTracker } from '../activity/activity-tracker.ts';
import type { SessionConfig } from '../config.ts';
import { EngramError, type ErrorDetail } from '../errors.ts';
import type { IdempotencyRequest } from '../memory/idempotency.ts';
import { newMemoryId } from '../memory/ids.ts';
import { contentProblems, LIMITS, rejectIfAny } from '../memory/memory-rules.ts';
import type { MemoryService } from '../memory/memory-service.ts';
import type { MemoryRow } from '../memory/memory-types.ts';
import type { SearchService } from '../search/search-service.ts';
import type { Store } from '../store/store.ts';
import type { Clock } from '../util/clock.ts';
import type { PreloadBundle, Preloader } from './preload.ts';
import type { HotSessions, WindowMessage } from './session-hot-state.ts';
import { summarizeSession } from './session-summary.ts';
import type { SessionSweeper } from './session-sweeper.ts';
import type { SessionActivity, SessionRow } from './session-types.ts';
import type { TimeoutModel } from './timeout-model.ts';
import type { TimeoutModels } from './timeout-models.ts';

/** A session to start. */
export interface StartInput {
  userId: string;
  agentId?: string | undefined;
  /** Text of the opening message: the bundle includes the memories most relevant to it. */
  context?: string | undefined;
  /** Budget of the preload bundle, in characters of memory content. */
  budgetChars: number;
}

/** A message to append. */
export interface MessageInput {
  role: string;
  content: string;
  /** ISO-8601; defaults to now, never in the future. */
  at?: string | undefined;
}

/** A session with its recent messages; `source` tells where it was read from. */
export interface SessionView {
  session: SessionRow;
  window: WindowMessage[];
  source: HotSessions['source'] | 'store';
}

/** A return within this many timeouts after an expiry counts as the same conversation's gap. */
const RETURN_FACTOR = 2;
/** Tries of an end that raced with appends. */
const END_ATTEMPTS = 5;
/** Messages of one session read for its summary (the newest, if it has more). */
const SUMMARY_MESSAGES = 1000;
/** Sessions read per page while a user is erased. */
const ERASE_PAGE = 500;

function toWindow(row: MemoryRow): WindowMessage {
  const role = typeof row.metadata.role === 'string' ? row.metadata.role : 'user';
  return { id: row.id, role, content: row.content, at: row.createdAt };
}

/**
 * Sessions: start (with a preload bundle), messages (stored as memories of kind `message`
 * right away, so they are durable before the 2xx and found by the next search), touch, end,
 * expiry by an adaptive idle timeout, and consolidation into a summary memory.
 */
export class SessionService {
  readonly #store: Store;
  readonly #memories: MemoryService;
  readonly #search: SearchService;
  readonly #preloader: Preloader;
  readonly #hot: HotSessions | null;
  readonly #activity: ActivityTracker;
  readonly #clock: Clock;
  readonly #config: SessionConfig;
  readonly #onEnd: (tenant: string, userId: string, summary: MemoryRow | null) => Promise<void>;
  readonly #models: TimeoutModels;
  #sweeper: SessionSweeper | null = null;

  constructor(parts: {
    store: Store;
    memories: MemoryService;
    search: SearchService;
    preloader: Preloader;
    models: TimeoutModels;
    hot: HotSessions | null;
    activity: ActivityTracker;
    clock: Clock;
    config: SessionConfig;
    /** After a session ended: the summary is a new memory (cache and index follow it). */
    onEnd: (tenant: string, userId: string, summary: MemoryRow | null) => Promise<void>;
  }) {
    this.#store = parts.store;
    this.#memories = parts.memories;
    this.#search = parts.search;
    this.#preloader = parts.preloader;
    this.#models = parts.models;
    this.#hot = parts.hot;
    this.#activity = parts.activity;
    this.#clock = parts.clock;
    this.#config = parts.config;
    this.#onEnd = parts.onEnd;
  }

  /** Connects the sweeper (it calls back into {@link expire}). */
  useSweeper(sweeper: SessionSweeper): void {
    this.#sweeper = sweeper;
  }

  /** Starts a session and builds its preload bundle. */
  async start(
    tenant: string,
    input: StartInput,
  ): Promise<{ session: SessionRow; preload: PreloadBundle }> {
    const now = this.#clock.now();
    this.#activity.touch(tenant, input.userId);
    const [model, previous] = await Promise.all([
      this.#models.get(tenant, input.userId),
      this.#store.listSessions(tenant, input.userId, null, 1),
    ]);
    const last = previous[0];
    if (last && now > last.lastActivityAt) {
      const gap = now - last.lastActivityAt;
      // A return soon after an expiry is most likely a conversation the timeout cut: learned
      // as a gap within a session, else the long gaps the timeout cuts are never learned and
      // it keeps shrinking (timeout-model.ts, test/unit/timeout-simulation.test.ts).
      if (last.state === 'expired' && gap <= RETURN_FACTOR * last.timeoutMs) {
        model.observeWithin(gap);
      } else {
        model.observeBetween(gap);
      }
    }
    const { timeoutMs, basis } = model.timeout(this.#config.timeout);
    const session: SessionRow = {
      tenant,
      id: newMemoryId(now, now),
      userId: input.userId,
      agentId: input.agentId ?? null,
      state: 'active',
      createdAt: now,
      lastActivityAt: now,
      expiresAt: now + timeoutMs,
      endedAt: null,
      timeoutMs,
      timeoutBasis: basis,
      messageCount: 0,
      summaryId: null,
    };
    // The bundle only reads: it is built while the session's commit waits for its flush to
    // disk, rather than after it. The hot copy follows the commit (no copy of a session that
    // is not stored).
    const bundle = this.#preloader.bundle(
      tenant,
      input.userId,
      input.context ?? '',
      input.budgetChars,
      now,
    );
    // Handled at once: a bundle that fails while the insert is still waiting must not count as
    // an unhandled rejection (it is awaited, and its error answered, once the insert is done).
    bundle.catch(() => undefined);
    await this.#store.insertSession(session);
    this.#models.save(tenant, input.userId, model);
    const [preload] = await Promise.all([bundle, this.#hot?.put(session, now)]);
    this.#sweeper?.schedule(session.expiresAt);
    return { session, preload };
  }

  /** A session with its recent messages: from its hot copy when held, else from the store. */
  get(tenant: string, id: string): Promise<SessionView> {
    return this.#view(tenant, id, true);
  }

  /** {@link get}, with the window read from the store only when `window` asks for it. */
  async #view(tenant: string, id: string, window: boolean): Promise<SessionView> {
    const hotSessions = this.#hot;
    const hot = hotSessions ? await hotSessions.get(tenant, id) : null;
    // An ended copy only keeps late writers from putting an active state back: the store has
    // the ended session's messages.
    if (hotSessions && hot && hot.session.tenant === tenant && hot.session.state === 'active') {
      return { session: hot.session, window: hot.window, source: hotSessions.source };
    }
    const session = await this.#store.getSession(tenant, id);
    if (!session) throw new EngramError('ENGRAM_SESSION_NOT_FOUND');
    return { session, window: window ? await this.#window(session) : [], source: 'store' };
  }

  async #window(session: SessionRow): Promise<WindowMessage[]> {
    const rows = await this.#store.listMemories(session.tenant, {
      userId: session.userId,
      sessionId: session.id,
      kind: 'message',
      limit: this.#config.window,
      now: this.#clock.now(),
    });
    return rows.reverse().map(toWindow);
  }

  /** The session if it is active now; a due one is expired on the spot (then 409). */
  async #active(tenant: string, id: string): Promise<SessionView> {
    // The window is needed only to seed a hot copy that lacks it (#followed).
    const view = await this.#view(tenant, id, this.#hot !== null);
    if (view.session.state !== 'active') throw new EngramError('ENGRAM_SESSION_ENDED');
    if (view.session.expiresAt <= this.#clock.now()) {
      await this.expire(tenant, id);
      throw new EngramError('ENGRAM_SESSION_ENDED');
    }
    return view;
  }

  /** Rule problems of messages (sizes, times), under `/body/messages/<i>`. */
  #problems(messages: MessageInput[], now: number): ErrorDetail[] {
    const problems: ErrorDetail[] = [];
    messages.forEach((m, i) => {
      const path = `/body/messages/${i}`;
      problems.push(...contentProblems(m.content, `${path}/content`));
      if (m.at !== undefined && Date.parse(m.at) > now + LIMITS.createdAtSkewMs) {
        problems.push({ path: `${path}/at`, message: 'must not be in the future' });
      }
    });
    return problems;
  }

  /**
   * Appends messages: each becomes a memory of kind `message` of this session, committed in one
   * transaction with the session's move (activity, expiry, count) and only while it is active:
   * durable before this resolves, found by the next search, and never left in an ended session.
   */
  async append(
    tenant: string,
    id: string,
    messages: MessageInput[],
    idem?: IdempotencyRequest,
  ): Promise<MemoryRow[]> {
    const now = this.#clock.now();
    rejectIfAny(this.#problems(messages, now));
    const view = await this.#active(tenant, id);
    const { session } = view;
    // Set by the commit below (a callback: TypeScript cannot follow the assignment).
    let updated = null as SessionRow | null;
    const rows = await this.#memories.createBatch(
      tenant,
      messages.map((m) => ({
        userId: session.userId,
        agentId: session.agentId ?? undefined,
        sessionId: session.id,
        content: m.content,
        kind: 'message',
        metadata: { role: m.role },
        // Without a time, the memory is created now, with ids in the order of the messages.
        createdAt: m.at,
      })),
      idem,
      async (built, record) => {
        const times = built.map((r) => r.createdAt).sort((a, b) => a - b);
        const { activity, model } = await this.#learn(session, times, built.length);
        updated = await this.#store.appendSessionMessages(tenant, id, built, activity, record);
        if (!updated) throw new EngramError('ENGRAM_SESSION_ENDED');
        this.#models.save(session.tenant, session.userId, model);
      },
    );
    if (updated) await this.#followed(view, updated, rows.map(toWindow));
    return rows;
  }

  /** Marks the user as still there: the idle timeout starts again. */
  async touch(tenant: string, id: string): Promise<SessionRow> {
    const view = await this.#active(tenant, id);
    const { activity, model } = await this.#learn(view.session, [this.#clock.now()], 0);
    const updated = await this.#store.touchSession(tenant, id, activity);
    if (!updated) throw new EngramError('ENGRAM_SESSION_ENDED');
    this.#models.save(view.session.tenant, view.session.userId, model);
    await this.#followed(view, updated, []);
    return updated;
  }

  /** The session's next activity after activity at `times` (ascending): the model learns the gaps. */
  async #learn(
    session: SessionRow,
    times: number[],
    messages: number,
  ): Promise<{ activity: SessionActivity; model: TimeoutModel }> {
    const now = this.#clock.now();
    this.#activity.touch(session.tenant, session.userId);
    const model = await this.#models.get(session.tenant, session.userId);
    let last = session.lastActivityAt;
    for (const at of times) {
      if (at > last) {
        model.observeWithin(at - last);
        last = at;
      }
    }
    const { timeoutMs, basis } = model.timeout(this.#config.timeout);
    const at = Math.max(session.lastActivityAt, now);
    return {
      activity: { at, expiresAt: at + timeoutMs, timeoutMs, timeoutBasis: basis, messages },
      model,
    };
  }

  /** After activity committed: the hot copy and the sweeper follow the session. */
  async #followed(view: SessionView, updated: SessionRow, added: WindowMessage[]): Promise<void> {
    const now = this.#clock.now();
    if (this.#hot) {
      await this.#hot.put(updated, now);
      // The hot copy did not hold the window: it is set from the store's, else appended to.
      if (view.source === 'store') {
        await this.#hot.pushWindow(updated, [...view.window, ...added], now, true);
      } else {
        await this.#hot.pushWindow(updated, added, now);
      }
    }
    this.#sweeper?.schedule(updated.expiresAt);
  }

  /** Ends a session now: consolidation writes its summary memory. */
  async end(
    tenant: string,
    id: string,
  ): Promise<{ session: SessionRow; summary: MemoryRow | null }> {
    const { session } = await this.#active(tenant, id);
    const ended = await this.#finish(session, 'ended', this.#clock.now());
    if (!ended) throw new EngramError('ENGRAM_SESSION_ENDED');
    return ended;
  }

  /**
   * Ends a session whose idle timeout has passed (the sweeper's call): true when this call
   * ended it, false when it was not due or someone else (another instance) ended it first.
   */
  async expire(tenant: string, id: string): Promise<boolean> {
    const session = await this.#store.getSession(tenant, id);
    const now = this.#clock.now();
    if (session?.state !== 'active' || session.expiresAt > now) return false;
    return (await this.#finish(session, 'expired', session.expiresAt)) !== null;
  }

  async #finish(
    first: SessionRow,
    state: 'ended' | 'expired',
    endedAt: number,
  ): Promise<{ session: SessionRow; summary: MemoryRow | null } | null> {
    let session: SessionRow | null = first;
    // The end is a compare-and-set on the message count it summarized: a message appended
    // meanwhile makes it fail, and it runs again with that message.
    for (let attempt = 0; attempt < END_ATTEMPTS && session?.state === 'active'; attempt++) {
      const now = this.#clock.now();
      const messages = (
        await this.#store.listMemories(session.tenant, {
          userId: session.userId,
          sessionId: session.id,
          kind: 'message',
          limit: SUMMARY_MESSAGES,
          now,
        })
      ).reverse();
      const index = this.#search.peekIndex(session.tenant, session.userId) ?? null;
      const input = summarizeSession(session, messages, index);
      const summary = input ? this.#memories.build(session.tenant, input, now) : null;
      const ended = await this.#store.endSession(session.tenant, session.id, {
        state,
        endedAt,
        summary,
        expectedMessages: session.messageCount,
      });
      if (ended) {
        await this.#hot?.ended(ended);
        await this.#onEnd(session.tenant, session.userId, summary);
        return { session: ended, summary };
      }
      session = await this.#store.getSession(first.tenant, first.id);
    }
    return null;
  }

  /**
   * The first half of erasing a user: their unwritten activity and timeout model are dropped
   * (not to be written back after the erasure), and their sessions' ids are read while the
   * store still has them. The function returned, called once the store has erased the user,
   * removes those sessions' hot copies, which every instance would otherwise still serve (their
   * recent messages included) until they expire.
   */
  async beginErase(tenant: string, userId: string): Promise<() => Promise<void>> {
    await Promise.all([this.#activity.forget(tenant, userId), this.#models.forget(tenant, userId)]);
    const hot = this.#hot;
    if (!hot) return async () => undefined;
    // Marked first: a copy put before the mark is of a session the listing below sees.
    await hot.erasing(tenant, userId);
    const ids: string[] = [];
    let before: string | null = null;
    for (;;) {
      const page = await this.#store.listSessions(tenant, userId, before, ERASE_PAGE);
      for (const s of page) ids.push(s.id);
      if (page.length < ERASE_PAGE) break;
      before = page[page.length - 1]?.id ?? null;
    }
    return async () => {
      await hot.erased(tenant, userId, ids);
    };
  }

  /** A page of a user's sessions, newest first. */
  list(
    tenant: string,
    userId: string,
    beforeId: string | null,
    limit: number,
  ): Promise<SessionRow[]> {
    return this.#store.listSessions(tenant, userId, beforeId, limit);
  }
}
