import { mount } from '../../src/cli/mount.js';
import supervise from './supervise.js';

export const { definitions, register } = mount([supervise]);
