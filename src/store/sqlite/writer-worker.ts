/**
 * The SQLite writer thread's entry (started by writer-thread.ts): the database's one writer
 * connection and its statements. Calls come in batches and are started in order; each is
 * answered once it is done (a write once it is on disk), the answers of a turn together.
 */
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { SqliteWrites } from './sqlite-writes.ts';
import { WriteStatsBoard } from './write-stats-board.ts';
import {
  toWire,
  type WriterCall,
  type WriterData,
  type WriterMessage,
  type WriterReply,
} from './writer-protocol.ts';

if (!parentPort) throw new Error('writer-worker.ts runs as a worker thread');
const port: MessagePort = parentPort;
const data = workerData as WriterData;
const board = new WriteStatsBoard(data.board);
const post = (message: WriterMessage): void => port.postMessage(message);

// A database that cannot be opened fails every call with the reason (a 503 for the callers),
// rather than the thread dying and being started again at each call.
let writes: SqliteWrites | Error;
try {
  writes = new SqliteWrites(data.file, {
    ...data.options,
    commitAfterFlush: true,
    onCheckpointFailure: (err) => post({ checkpointFailure: toWire(err) }),
  });
} catch (err) {
  writes = err instanceof Error ? err : new Error(String(err));
}

// Checkpoints run on a timer of their own: their counters are published between calls too.
setInterval(() => {
  if (!(writes instanceof Error)) board.publish(writes.stats());
}, 250).unref();

// Answers leave together, once per turn of this thread's loop, after the counters they moved.
let outbox: WriterReply[] = [];
const reply = (answer: WriterReply): void => {
  if (outbox.length === 0) {
    setImmediate(() => {
      const replies = outbox;
      outbox = [];
      if (!(writes instanceof Error)) board.publish(writes.stats());
      post({ replies });
    });
  }
  outbox.push(answer);
};

async function answer({ id, method, args }: WriterCall): Promise<void> {
  try {
    if (writes instanceof Error) throw writes;
    let value: unknown;
    if (method === 'close') {
      await writes.close();
    } else {
      const fn = writes[method] as (...a: unknown[]) => Promise<unknown>;
      value = await fn.apply(writes, args);
    }
    reply({ id, ok: true, value });
  } catch (err) {
    reply({ id, ok: false, error: toWire(err) });
  }
  // The last answer is posted before the port closes.
  if (method === 'close') setImmediate(() => port.close());
}

port.on('message', (calls: WriterCall[]) => {
  for (const call of calls) void answer(call);
});
