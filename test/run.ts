/**
 * Runs every test file (an explicit list: Node 20's runner expands no globs and skips `.ts`
 * in folders), prints the spec report, and fails when a test fails or when no test ran.
 */
import { run } from 'node:test';
import { spec } from 'node:test/reporters';

/** Every suite, in the order they start; keep this list in step with the files under test/. */
const ALL = [
  'test/unit/json-body.test.ts',
  'test/integration/bad-input.test.ts',
  'test/unit/docs-and-config.test.ts',
  'test/contract/plan-check.test.ts',
  'test/contract/sqlite-store.test.ts',
  'test/unit/sqlite-fts-tokens.test.ts',
  'test/contract/postgres-store.test.ts',
  'test/integration/memory-api.test.ts',
  'test/integration/auth-and-health.test.ts',
  'test/integration/crash-durability.test.ts',
  'test/integration/cache-warming.test.ts',
  'test/integration/fast-path.test.ts',
  'test/integration/cache-bus-heartbeat.test.ts',
  'test/integration/cache-coherence.test.ts',
  'test/unit/cache-stack.test.ts',
  'test/unit/deadline.test.ts',
  'test/integration/cache-response.test.ts',
  'test/integration/cache-stampede.test.ts',
  'test/integration/cache-race.test.ts',
  'test/integration/cache-versions.test.ts',
  'test/integration/cache-bus-loss.test.ts',
  'test/integration/cache-redis-down.test.ts',
  'test/integration/cache-redis-lag.test.ts',
  'test/integration/cache-store-down.test.ts',
  'test/unit/vector.test.ts',
  'test/unit/wal-sync.test.ts',
  'test/unit/write-behind.test.ts',
  'test/unit/sort-in-steps.test.ts',
  'test/unit/iso-time.test.ts',
  'test/unit/wal-checkpointer.test.ts',
  'test/unit/heap-growth.test.ts',
  'test/unit/cached-embedder.test.ts',
  'test/unit/http-embedder.test.ts',
  'test/integration/memory-embeddings.test.ts',
  'test/integration/search-api.test.ts',
  'test/integration/search-vectors.test.ts',
  'test/integration/sessions-api.test.ts',
  'test/unit/timeout-models.test.ts',
  'test/unit/local-session-state.test.ts',
  'test/unit/search-tokenizer.test.ts',
  'test/unit/search-signals.test.ts',
  'test/unit/term-postings.test.ts',
  'test/unit/id-table.test.ts',
  'test/unit/answered-rows.test.ts',
  'test/unit/search-index.test.ts',
  'test/unit/index-cache.test.ts',
  'test/unit/timeout-model.test.ts',
  'test/unit/timeout-simulation.test.ts',
  'test/unit/bench-compare.test.ts',
  'test/unit/open-loop.test.ts',
  'test/unit/bench-stress.test.ts',
  'test/unit/bench-dataset.test.ts',
  'test/unit/virtual-users.test.ts',
  'test/unit/bench-disk-waits.test.ts',
  'test/unit/plot.test.ts',
];

const files = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ALL;

let passed = 0;
let failed = 0;
let skipped = 0;
const stream = run({ files, concurrency: 2, timeout: 300_000 });
stream.on('test:pass', (event) => {
  if (event.details.type === 'suite') return;
  if (event.skip) skipped++;
  else passed++;
});
stream.on('test:fail', (event) => {
  // A failing `todo` test is reported as todo, not as a failure (as node --test counts it).
  if (event.details.type !== 'suite' && !event.todo) failed++;
});
stream.compose(new spec()).pipe(process.stdout);
stream.on('end', () => {
  process.stdout.write(
    `\n${passed} passed, ${failed} failed, ${skipped} skipped in ${files.length} files\n`,
  );
  if (failed > 0 || passed === 0) {
    if (passed === 0) process.stdout.write('No test passed: treating the run as failed.\n');
    process.exitCode = 1;
  }
});
