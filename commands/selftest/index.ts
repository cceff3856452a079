import { mount } from '../../src/cli/mount.js';
import selftest from './selftest.js';

export const { definitions, register } = mount([selftest]);
