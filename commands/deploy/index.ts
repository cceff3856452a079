import { mount } from '../../src/cli/mount.js';
import deploy from './deploy.js';

export const { definitions, register } = mount([deploy]);
