import { mount } from '../../src/cli/mount.js';
import top from './top.js';

export const { definitions, register } = mount([top]);
