import { mount } from '../../src/cli/mount.js';
import preflight from './preflight.js';

export const { definitions, register } = mount([preflight]);
