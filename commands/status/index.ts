import { mount } from '../../src/cli/mount.js';
import status from './status.js';

export const { definitions, register } = mount([status]);
