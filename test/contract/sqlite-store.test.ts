import { openSqlite } from '../helpers/stores.ts';
import { storeContract } from './store-contract.ts';

storeContract('sqlite', openSqlite);
