import type { FlagSpec } from '../../src/cli/define.js';
import type { FleetFlagsIn } from '../../src/cli/fleet.js';

export type IncidentFlags = FleetFlagsIn & {
  json?: boolean;
  notify?: boolean;
  investigate?: boolean;
  dryRun?: boolean;
  watch?: boolean;
  level?: string;
};

/** Every incident command's: where the fleet is, how it is configured, --json. */
export const COMMON: readonly FlagSpec[] = ['state-dir', 'signaling', 'witness', 'config', 'set', 'json'];
