import { mount } from '../../src/cli/mount.js';
import check from './check.js';
import exportCmd from './export.js';

export const { definitions, register } = mount([exportCmd, check]);
