import { mount } from '../../src/cli/mount.js';
import load from './load.js';

export const { definitions, register } = mount([load]);
