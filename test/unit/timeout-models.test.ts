/**
 * Users' timeout models held in process and written behind: a save costs no store write until
 * the flush, an unwritten model is what the next read sees, and a flushed one is what another
 * instance (or a restart) reads.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { TimeoutModels } from '../../src/sessions/timeout-models.ts';
import type { Store } from '../../src/store/store.ts';
import { FakeClock } from '../helpers/app.ts';
import { openSqlite } from '../helpers/stores.ts';

const SETTINGS = {
  defaultMs: 1_800_000,
  minMs: 120_000,
  maxMs: 7_200_000,
  quantile: 0.95,
  margin: 1.5,
};
const logger = pino({ level: 'silent' });

describe('timeout models (write-behind)', () => {
  let store: Store;
  let dispose: () => Promise<void>;
  before(async () => {
    ({ store, dispose } = await openSqlite());
  });
  after(async () => {
    await dispose();
  });

  it('saves without a store write until the flush; reads see the unwritten model', async () => {
    const clock = new FakeClock();
    const models = new TimeoutModels(store, clock, logger, 60_000);
    const model = await models.get('acme', 'fast');
    for (let i = 0; i < 10; i++) model.observeWithin(20_000);
    models.save('acme', 'fast', model);
    assert.equal(await store.getTimeoutModel('acme', 'fast'), null);
    // Past the read TTL the model is read again: the unwritten one wins over the store's.
    clock.time += 120_000;
    const again = await models.get('acme', 'fast');
    assert.equal(again.timeout(SETTINGS).basis.source, 'learned');
    await models.flush();
    const row = await store.getTimeoutModel('acme', 'fast');
    assert.equal(row?.model, model.toJSON());
    // Another instance (or this one after a restart) reads the flushed model.
    const elsewhere = new TimeoutModels(store, clock, logger, 60_000);
    assert.deepEqual(
      (await elsewhere.get('acme', 'fast')).timeout(SETTINGS),
      model.timeout(SETTINGS),
    );
  });

  it('stop() writes what is pending', async () => {
    const clock = new FakeClock();
    const models = new TimeoutModels(store, clock, logger, 60_000);
    models.start();
    const model = await models.get('acme', 'slow');
    model.observeBetween(3_600_000);
    models.save('acme', 'slow', model);
    await models.stop();
    assert.equal((await store.getTimeoutModel('acme', 'slow'))?.model, model.toJSON());
  });
});
