/**
 * The stress ramp's judgment of a step (bench/stress.ts): what breaks it, which first runs are
 * measured again before the ramp stops, and which run stands for a step of several.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MixResult } from '../../bench/lib/virtual-users.ts';
import { isBroken, needsConfirmation, stepResult } from '../../bench/stress.ts';

/** A run with only what the judgment reads: p99, connection errors, status codes. */
function run(p99: number, errors = 0, statusCodes: Record<string, number> = { 200: 1000 }) {
  return { all: { p99 }, errors, statusCodes } as unknown as MixResult;
}

describe('stress ramp: judging a step', () => {
  it('breaks on a p99 past 100 ms, an error or a 5xx', () => {
    assert.equal(isBroken(run(99.9)), false);
    assert.equal(isBroken(run(100.1)), true);
    assert.equal(isBroken(run(10, 1)), true);
    assert.equal(isBroken(run(10, 0, { 200: 999, 503: 1 })), true);
    assert.equal(isBroken(run(10, 0, { 200: 999, 409: 1 })), false);
  });

  it('measures again only a break by latency alone', () => {
    assert.equal(needsConfirmation(run(157)), true);
    assert.equal(needsConfirmation(run(50)), false, 'held');
    assert.equal(needsConfirmation(run(157, 2)), false, 'errors break at once');
    assert.equal(needsConfirmation(run(157, 0, { 200: 10, 500: 1 })), false, '5xx break at once');
  });

  it('judges a step of several runs by the run with the median p99', () => {
    const first = run(157);
    assert.equal(stepResult([first]), first);
    // One noisy run among two that held: the step held.
    const held = stepResult([first, run(19.3), run(36.4)]);
    assert.equal(held.all.p99, 36.4);
    assert.equal(isBroken(held), false);
    // Two of three past the limit: the step broke.
    assert.equal(isBroken(stepResult([first, run(116), run(40)])), true);
  });
});
