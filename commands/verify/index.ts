import { mount } from '../../src/cli/mount.js';
import verify from './verify.js';

export const { definitions, register } = mount([verify]);
