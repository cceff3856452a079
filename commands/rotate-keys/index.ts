import { mount } from '../../src/cli/mount.js';
import rotateKeys from './rotate-keys.js';

export const { definitions, register } = mount([rotateKeys]);
