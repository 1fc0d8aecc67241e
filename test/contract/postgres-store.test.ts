import { needs } from '../helpers/services.ts';
import { openPostgres } from '../helpers/stores.ts';
import { storeContract } from './store-contract.ts';

const { skip } = await needs('postgres');
storeContract('postgres', openPostgres, skip);
