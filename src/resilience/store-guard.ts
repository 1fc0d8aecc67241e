import {
  BrokenCircuitError,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  TaskCancelledError,
  TimeoutStrategy,
  timeout,
  wrap,
} from 'cockatiel';
import { isStoreUnavailable, type Store, StoreUnavailable } from '../store/store.ts';

/** Store methods that only read: bounded by the read timeout as well. */
const READS = new Set<keyof Store>([
  'getMemory',
  'listMemories',
  'listHistory',
  'exportMemories',
  'getIdempotency',
  'findApiKey',
  'listApiKeys',
  'recentlyActiveUsers',
  'usersUsuallyActiveAt',
  'countLiveMemories',
  'searchText',
  'topByImportance',
  'getSession',
  'listSessions',
  'dueSessions',
  'nextSessionExpiry',
  'getTimeoutModel',
]);

/** Methods that pass through untouched: probes, schema, lifecycle. */
const UNGUARDED = new Set<keyof Store>(['ping', 'migrate', 'close', 'explain', 'dialect', 'stats']);

/** Settings of the store guard. */
export interface StoreGuardOptions {
  /** A read slower than this fails (and may be answered from cache within grace). */
  readTimeoutMs: number;
  /** Consecutive unavailability failures that open the circuit. @default 5 */
  failures?: number;
  /** How long the circuit stays open before one trial call. @default 2000 */
  halfOpenAfterMs?: number;
}

/**
 * Wraps a store in one circuit breaker (opened by consecutive "store unavailable" failures,
 * not by bad requests) and a timeout on reads. While the circuit is open every call fails at
 * once with {@link StoreUnavailable}: writes answer 503 with Retry-After without waiting, and
 * reads fall back to cached copies within grace.
 */
export function guardStore(store: Store, options: StoreGuardOptions): Store {
  const breaker = circuitBreaker(
    handleWhen((err) => isStoreUnavailable(err) || err instanceof TaskCancelledError),
    {
      halfOpenAfter: options.halfOpenAfterMs ?? 2_000,
      breaker: new ConsecutiveBreaker(options.failures ?? 5),
    },
  );
  // SQLite answers within the call (its driver is synchronous): no timer can cut a read short
  // there, and the timeout policy's controller, timer and listeners per call cost ≈ 4% of the
  // server's CPU in the realistic mix. Its own busy timeout bounds a locked database instead.
  // `abortOnReturn: false`: aborting a finished call's signal builds a DOMException per read.
  const readPolicy =
    store.dialect === 'sqlite'
      ? breaker
      : wrap(
          breaker,
          timeout(options.readTimeoutMs, {
            strategy: TimeoutStrategy.Aggressive,
            abortOnReturn: false,
          }),
        );
  const translate = (err: unknown): never => {
    if (err instanceof BrokenCircuitError) {
      throw new StoreUnavailable('store circuit open', { cause: err });
    }
    if (err instanceof TaskCancelledError) {
      throw new StoreUnavailable('store read timed out', { cause: err });
    }
    throw err;
  };
  // One wrapper per method, made on first use (not a closure per call).
  const wrappers = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, property, receiver) {
      const made = wrappers.get(property);
      if (made !== undefined) return made;
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      let wrapper: unknown;
      if (UNGUARDED.has(property as keyof Store)) {
        wrapper = value.bind(target);
      } else {
        const policy = READS.has(property as keyof Store) ? readPolicy : breaker;
        wrapper = (...args: unknown[]) =>
          policy.execute(() => value.apply(target, args)).catch(translate);
      }
      wrappers.set(property, wrapper);
      return wrapper;
    },
  });
}
