import { mount } from '../../src/cli/mount.js';
import canary from './canary.js';
import { abort, promote, resume } from './decide.js';
import status from './status.js';

export const { definitions, register } = mount([canary, status, promote, abort, resume]);
