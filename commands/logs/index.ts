import { mount } from '../../src/cli/mount.js';
import logs from './logs.js';

export const { definitions, register } = mount([logs]);
