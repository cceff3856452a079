import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { FULL_ONLY } from './tiers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export default defineConfig({
  test: {
    root,
    include: ['test/**/*.test.ts'],
    // IFMESH_TEST_TIER=all (npm run test:all): every file; else the quick tier of ./tiers.ts.
    exclude: ['**/node_modules/**', ...(process.env.IFMESH_TEST_TIER === 'all' ? [] : FULL_ONLY)],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Two files at a time: most tests wait on the processes they start (agents, servers, coturn), so
    // two workers on 2 cores finish the quick tier in ~13 min where one worker needed over 15.
    // IFMESH_TEST_WORKERS=1 runs one file at a time (to tell a flake from a real failure).
    maxWorkers: Number(process.env.IFMESH_TEST_WORKERS ?? 2),
    // Memory tests measure after forced collections, so GC timing does not decide them.
    execArgv: ['--expose-gc'],
  },
});
