import { mount } from '../../src/cli/mount.js';
import completion from './completion.js';

export const { definitions, register } = mount([completion]);
