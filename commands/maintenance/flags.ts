import type { FlagSpec } from '../../src/cli/define.js';
import type { ConfigFlags } from '../../src/cli/options.js';

export type MaintenanceFlags = ConfigFlags & {
  signaling?: string;
  witness?: string;
  stateDir?: string;
  json?: boolean;
  notify: boolean;
};

/** daily's and weekly's: where the fleet is, --json, and whether to tell the team. */
export const SHARED: readonly FlagSpec[] = [
  'state-dir',
  'signaling',
  'witness',
  'config',
  'set',
  'json',
  { flags: '--no-notify', description: 'do not tell the team (Slack, e-mail) what needs a person' },
];
