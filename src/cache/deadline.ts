/** A deadline passed: the answer did not come within `ms`. */
export class DeadlineExceeded extends Error {
  readonly ms: number;

  constructor(ms: number) {
    super(`no answer within the ${ms} ms deadline`);
    this.name = 'DeadlineExceeded';
    this.ms = ms;
  }
}

/**
 * `promise`, or a {@link DeadlineExceeded} rejection when it has not settled `ms` after the
 * call; tolerant of a blocked event loop.
 *
 * Why not a plain race against a timer (ioredis's `commandTimeout` is one): each turn of the
 * event loop runs the timers phase before the poll phase that reads sockets. When the loop is
 * held longer than the deadline (CPU work, a GC pause), an answer that arrived in time is
 * already waiting in the socket when it resumes, yet the timer fires first and fails a command
 * that did not fail. So when the timer fires, this waits one `setImmediate`: the check phase
 * comes after the poll phase, by then whatever was readable has been read and has settled the
 * promise (promise reactions run before the immediate). Only a promise still unsettled then is
 * rejected. A real stall still fails, at most one loop turn after the deadline.
 *
 * The timer is cleared when the promise settles. The promise itself is not cancelled (its
 * later outcome is ignored, a rejection included).
 */
export function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (settled) return;
        settled = true;
        reject(new DeadlineExceeded(ms));
      });
    }, ms);
    promise.then(
      (value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
