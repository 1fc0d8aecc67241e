/** A source of the current time in epoch milliseconds; tests pass a fake. */
export interface Clock {
  now(): number;
}

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };
