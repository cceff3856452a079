import { mount } from '../../src/cli/mount.js';
import rollback from './rollback.js';

export const { definitions, register } = mount([rollback]);
