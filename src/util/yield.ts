import { setImmediate } from 'node:timers/promises';

/**
 * Lets queued I/O and timers run. Long operations call it between chunks so that no single
 * step holds the event loop for more than a few milliseconds.
 */
export function yieldToLoop(): Promise<void> {
  return setImmediate();
}
