import { mount } from '../../src/cli/mount.js';
import daily from './daily.js';
import installCron from './install-cron.js';
import weekly from './weekly.js';

export const { definitions, register } = mount([daily, weekly, installCron]);
