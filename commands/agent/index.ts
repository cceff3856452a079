import { mount } from '../../src/cli/mount.js';
import run from './run.js';
import swarm from './swarm.js';

export const { definitions, register } = mount([run, swarm]);
