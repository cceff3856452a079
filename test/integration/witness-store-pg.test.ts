// The store contract suite, unchanged, against a real PostgreSQL started from initdb for this file.
import { openPgStore } from '../../src/services/witness/pg-store.js';
import { postgresForThisFile } from '../helpers/postgres.js';
import { describeStoreContract } from './witness-store-contract.js';

const server = postgresForThisFile();

describeStoreContract('postgres', async () => openPgStore(await server().createDatabase()));
