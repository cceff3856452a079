import { mount } from '../../src/cli/mount.js';
import down from './down.js';

export const { definitions, register } = mount([down]);
