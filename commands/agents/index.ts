import { mount } from '../../src/cli/mount.js';
import block from './block.js';
import list from './list.js';
import rebind from './rebind.js';
import unblock from './unblock.js';

export const { definitions, register } = mount([block, unblock, rebind, list]);
