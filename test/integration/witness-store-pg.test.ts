// The store contract suite, unchanged, against a real PostgreSQL started from initdb for this file.
import { afterAll, beforeAll } from 'vitest';
import { openPgStore } from '../../src/services/witness/pg-store.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { describeStoreContract } from './witness-store-contract.js';

let server: TestPostgres;
beforeAll(async () => {
  server = await startPostgres();
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

describeStoreContract('postgres', async () => openPgStore(await server.createDatabase()));
