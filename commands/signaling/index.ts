import { mount } from '../../src/cli/mount.js';
import serve from './serve.js';

export const { definitions, register } = mount([serve]);
