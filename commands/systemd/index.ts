import { mount } from '../../src/cli/mount.js';
import install from './install.js';
import uninstall from './uninstall.js';

export const { definitions, register } = mount([install, uninstall]);
