import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openSqlite } from '../helpers/stores.ts';
import { storeContract } from './store-contract.ts';

storeContract('sqlite', openSqlite);

describe('sqlite query plans', () => {
  it('counts live memories from an index alone (no row read per memory)', async () => {
    const { store, dispose } = await openSqlite();
    try {
      const plan = await store.explain('countLiveMemories');
      assert.match(plan, /COVERING INDEX memories_live/);
    } finally {
      await dispose();
    }
  });
});
