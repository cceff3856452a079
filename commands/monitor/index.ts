import { mount } from '../../src/cli/mount.js';
import monitor from './monitor.js';

export const { definitions, register } = mount([monitor]);
