// What most commands resolve first, in one place: the configuration (--config, --set), the state
// directory (--state-dir) and the fleet view built from both (--signaling, --witness).
import { type LoadedConfig, loadConfig } from '../config/load.js';
import { type Fleet, loadFleet } from '../ops/fleet/fleet.js';
import { resolveStateDir } from '../state/state-dir.js';
import type { Context } from './context.js';
import type { ConfigFlags } from './options.js';

export interface FleetFlagsIn extends ConfigFlags {
  stateDir?: string;
  signaling?: string;
  witness?: string;
}

export interface Resolved {
  loaded: LoadedConfig;
  stateDir: string;
  fleet: Fleet;
}

export async function resolveFleet(
  ctx: Pick<Context, 'cwd' | 'env'>,
  flags: FleetFlagsIn,
): Promise<Resolved> {
  const loaded = await loadConfig({ cwd: ctx.cwd, env: ctx.env, file: flags.config, flags: flags.set });
  const stateDir = resolveStateDir(ctx.cwd, ctx.env, flags.stateDir);
  const fleet = loadFleet(stateDir, loaded, {
    signaling: flags.signaling ?? ctx.env.IFMESH_SIGNALING_URL,
    witness: flags.witness,
  });
  return { loaded, stateDir, fleet };
}
