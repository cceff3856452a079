import { mount } from '../../src/cli/mount.js';
import releases from './releases.js';

export const { definitions, register } = mount([releases]);
