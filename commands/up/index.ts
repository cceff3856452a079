import { mount } from '../../src/cli/mount.js';
import up from './up.js';

export const { definitions, register } = mount([up]);
