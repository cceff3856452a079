import { mount } from '../../src/cli/mount.js';
import init from './init.js';

export const { definitions, register } = mount([init]);
