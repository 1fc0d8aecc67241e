/**
 * boundHeapGrowth: the V8 flag set at run time takes effect (V8 reads it at every collection),
 * measured in child processes holding the same live heap under the same garbage.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('../fixtures/heap-churn.ts', import.meta.url));

function peakMiB(percent: number): number {
  const out = execFileSync(process.execPath, ['--import', 'tsx', CHILD, String(percent)], {
    encoding: 'utf8',
  });
  const result = JSON.parse(out) as { peakMiB: number; kept: number };
  assert.equal(result.kept, 1_000_000);
  return result.peakMiB;
}

describe('boundHeapGrowth', () => {
  it('keeps the heap near its live size (≈ 150 MB live: V8 alone peaked near 660 MiB here)', () => {
    const bounded = peakMiB(20);
    assert.ok(bounded < 350, `peak heap ${bounded.toFixed(0)} MiB with a 20% bound`);
  });
});
