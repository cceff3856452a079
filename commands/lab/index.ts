import { mount } from '../../src/cli/mount.js';
import down from './down.js';
import run from './run.js';
import status from './status.js';
import up from './up.js';

export const { definitions, register } = mount([up, down, status, run]);
