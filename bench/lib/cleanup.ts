/**
 * Cleanups of resources a benchmark started (child processes, schemas, temp dirs), run in
 * reverse order when the run ends or is interrupted.
 */
const pending = new Set<() => Promise<void> | void>();

/** Registers `fn`; the returned function unregisters it (call it once `fn` has run). */
export function deferCleanup(fn: () => Promise<void> | void): () => void {
  pending.add(fn);
  return () => {
    pending.delete(fn);
  };
}

/** Runs every registered cleanup, newest first; errors are reported, not thrown. */
export async function runCleanups(): Promise<void> {
  for (const fn of [...pending].reverse()) {
    pending.delete(fn);
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`cleanup failed: ${(err as Error).message}\n`);
    }
  }
}
