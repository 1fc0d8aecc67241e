import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fullScans } from './store-contract.ts';

// The index test is only as good as its detector: prove it sees full scans in both dialects.
describe('full-scan detector', () => {
  it('flags SQLite and PostgreSQL full scans of the memories tables', () => {
    assert.equal(fullScans('SCAN memories').length, 1);
    assert.equal(fullScans('SCAN memories USING INDEX memories_user').length, 1);
    assert.equal(fullScans('  ->  Seq Scan on memories  (cost=10000000000.00..1)').length, 1);
    assert.equal(fullScans('SCAN memory_history').length, 1);
  });
  it('accepts index searches', () => {
    assert.deepEqual(
      fullScans('SEARCH memories USING INDEX memories_user (tenant=? AND user_id=?)'),
      [],
    );
    assert.deepEqual(fullScans('Index Scan Backward using memories_user on memories'), []);
    assert.deepEqual(fullScans('SCAN json_each VIRTUAL TABLE INDEX 1:'), []);
  });
});
