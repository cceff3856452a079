import { mount } from '../../src/cli/mount.js';
import check from './check.js';
import show from './show.js';

export const { definitions, register } = mount([check, show]);
