import { mount } from '../../src/cli/mount.js';
import check from './check.js';
import rotate from './rotate.js';

export const { definitions, register } = mount([check, rotate]);
