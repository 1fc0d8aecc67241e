import { Bench, type Fn } from 'tinybench';

/** One measured task of a micro-benchmark subject. */
export interface MicroResult {
  subject: string;
  task: string;
  /** Calls per second: 1e9 / meanNs. */
  opsPerSec: number;
  meanNs: number;
  p50Ns: number;
  p99Ns: number;
  /** Latency samples measured (one per call). */
  samples: number;
}

/** Measuring time per task (ms), after {@link WARMUP_MS} of unrecorded calls. */
const TIME_MS = 400;
const WARMUP_MS = 100;

/**
 * Runs the tasks one after the other in a tinybench `Bench` and returns their figures.
 * Throws when a task fails, so that a broken benchmark is not reported as a fast one.
 */
export async function measure(
  subject: string,
  tasks: Array<[task: string, fn: Fn]>,
): Promise<MicroResult[]> {
  const bench = new Bench({ name: subject, time: TIME_MS, warmupTime: WARMUP_MS, throws: true });
  for (const [task, fn] of tasks) bench.add(task, fn);
  await bench.run();
  return bench.tasks.map((t) => {
    const r = t.result;
    if (r.state !== 'completed') {
      throw new Error(`${subject}: ${t.name} ended ${r.state}`);
    }
    // tinybench reports latency in milliseconds.
    const meanNs = r.latency.mean * 1e6;
    return {
      subject,
      task: t.name,
      opsPerSec: meanNs > 0 ? 1e9 / meanNs : 0,
      meanNs,
      p50Ns: r.latency.p50 * 1e6,
      p99Ns: r.latency.p99 * 1e6,
      samples: r.latency.samplesCount,
    };
  });
}
