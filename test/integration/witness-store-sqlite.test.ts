import path from 'node:path';
import { afterAll } from 'vitest';
import { openSqliteStore } from '../../src/services/witness/sqlite-store.js';
import { tempDir } from '../helpers/cli.js';
import { describeStoreContract } from './witness-store-contract.js';

const { dir, cleanup } = tempDir();
afterAll(() => cleanup());
let n = 0;

describeStoreContract('sqlite', async () => openSqliteStore(path.join(dir, `store-${n++}.db`)));
