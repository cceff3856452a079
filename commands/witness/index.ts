import { mount } from '../../src/cli/mount.js';
import migrate from './migrate.js';
import query from './query.js';
import serve from './serve.js';
import spool from './spool.js';
import tail from './tail.js';
import trust from './trust.js';
import verify from './verify.js';

export const { definitions, register } = mount([serve, query, tail, verify, migrate, spool, trust]);
