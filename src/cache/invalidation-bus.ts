import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { withDeadline } from './deadline.ts';

/** Channel of the invalidation messages. */
export const BUS_CHANNEL = 'engram:invalidate';

/** "This scope is now at this version", from the instance `origin`. */
export interface Invalidation {
  scope: string;
  version: number;
  origin: string;
}

/** Callbacks of a bus subscriber. */
export interface BusHandlers {
  /** A message of another instance. */
  onMessage: (message: Invalidation) => void;
  /** The subscription came back after a disconnection: messages may have been lost. */
  onReconnect: () => void;
}

/**
 * Invalidation over Redis pub/sub: each write's new scope version is published, and every
 * other instance takes it at once. Pub/sub is at-most-once, so when the subscriber connection
 * comes back the instance is told to forget what it holds locally.
 */
export class InvalidationBus {
  /** This instance's id; its own messages are ignored. */
  readonly origin = randomUUID();
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  readonly #logger: Logger;
  #wasReady = false;
  #lostSinceReady = false;
  #lastPong = 0;
  readonly #staleAfterMs: number;
  readonly #deadlineMs: number;
  readonly #heartbeat: NodeJS.Timeout;

  /**
   * @param staleAfterMs the bus counts as healthy while its connection answered a PING within
   *   this long (a silent network partition shows no disconnection).
   * @param deadlineMs deadline of a PUBLISH on `publisher` (see `withDeadline`); the subscriber
   *   connection's commands (SUBSCRIBE, the heartbeat PING) have none: a late PONG still proves
   *   the connection delivers, and a missing one just lets the bus go stale.
   */
  constructor(
    publisher: Redis,
    subscriber: Redis,
    handlers: BusHandlers,
    logger: Logger,
    staleAfterMs: number,
    deadlineMs: number,
  ) {
    this.#publisher = publisher;
    this.#subscriber = subscriber;
    this.#logger = logger;
    this.#staleAfterMs = staleAfterMs;
    this.#deadlineMs = deadlineMs;
    this.#heartbeat = setInterval(
      () => {
        if (subscriber.status !== 'ready') return;
        subscriber.ping().then(
          () => {
            this.#lastPong = Date.now();
          },
          () => undefined,
        );
      },
      Math.max(50, Math.floor(staleAfterMs / 4)),
    );
    this.#heartbeat.unref();
    subscriber.on('message', (channel: string, text: string) => {
      if (channel !== BUS_CHANNEL) return;
      let message: Invalidation;
      try {
        message = JSON.parse(text) as Invalidation;
      } catch {
        return;
      }
      if (message.origin === this.origin) return;
      if (typeof message.scope !== 'string' || typeof message.version !== 'number') return;
      handlers.onMessage(message);
    });
    subscriber.on('close', () => {
      if (this.#wasReady) this.#lostSinceReady = true;
    });
    // ioredis re-subscribes on reconnect; 'ready' marks that the connection is usable again.
    subscriber.on('ready', () => {
      if (this.#lostSinceReady) {
        this.#lostSinceReady = false;
        this.#logger.info('invalidation bus reconnected: clearing local cache');
        handlers.onReconnect();
      }
      this.#wasReady = true;
    });
    subscriber.subscribe(BUS_CHANNEL).catch((err: unknown) => {
      this.#logger.warn({ err }, 'invalidation bus subscribe failed; retrying on reconnect');
    });
  }

  /** Announces a scope's new version; false when Redis could not take it. */
  async publish(scope: string, version: number): Promise<boolean> {
    if (this.#publisher.status !== 'ready') return false;
    try {
      await withDeadline(
        this.#publisher.publish(
          BUS_CHANNEL,
          JSON.stringify({ scope, version, origin: this.origin } satisfies Invalidation),
        ),
        this.#deadlineMs,
      );
      return true;
    } catch {
      return false;
    }
  }

  /** Whether the subscription is up now. */
  get connected(): boolean {
    return this.#subscriber.status === 'ready';
  }

  /** Connected, and its connection answered a PING recently: messages are arriving. */
  healthy(): boolean {
    return this.connected && Date.now() - this.#lastPong < this.#staleAfterMs;
  }

  /** Stops the heartbeat. */
  stop(): void {
    clearInterval(this.#heartbeat);
  }
}
