import { mount } from '../../src/cli/mount.js';
import sign from './sign.js';
import verify from './verify.js';

export const { definitions, register } = mount([sign, verify]);
