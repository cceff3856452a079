import type { Context } from '../../src/cli/context.js';
import type { FlagSpec } from '../../src/cli/define.js';
import type { StateDir } from '../../src/state/state-dir.js';

export interface SystemdFlags {
  unitDir?: string;
  serviceUser?: string;
  dryRun?: boolean;
  json?: boolean;
}

export const SYSTEMD_FLAGS: readonly FlagSpec[] = [
  'state-dir',
  'unit-dir',
  'service-user',
  'json',
  { flags: '--dry-run', description: 'print the units and the actions, change nothing' },
];

/** Where the units go and whom they run as: the flags, else as recorded at install. */
export async function settingsOf(state: StateDir, flags: SystemdFlags, ctx: Context) {
  const { resolveSystemdSettings } = await import('../../src/ops/fleet/systemd.js');
  return resolveSystemdSettings(state, { unitDir: flags.unitDir, user: flags.serviceUser, env: ctx.env });
}
