import { mount } from '../../src/cli/mount.js';
import generate from './generate.js';
import show from './show.js';

export const { definitions, register } = mount([generate, show]);
