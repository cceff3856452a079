// What most commands resolve first, in one place: the configuration (--config, --set), the state
// directory (--state-dir) and the fleet view built from both (--signaling, --witness).
import type { LoadedConfig } from '../config/load.js';
import { type Fleet, loadFleet } from '../ops/fleet/fleet.js';
import { resolveState, type StateDir } from '../state/state-dir.js';
import type { Context } from './context.js';
import type { ConfigFlags } from './options.js';
import { loadCommandConfig } from './tls.js';

export interface FleetFlagsIn extends ConfigFlags {
  stateDir?: string;
  signaling?: string;
  witness?: string;
}

export interface Resolved {
  loaded: LoadedConfig;
  state: StateDir;
  fleet: Fleet;
}

/** Also settles the context's CA (--ca, IFMESH_CA_FILE): see ./tls.ts. */
export async function resolveFleet(ctx: Context, flags: FleetFlagsIn): Promise<Resolved> {
  const loaded = await loadCommandConfig(ctx, flags);
  const state = resolveState(ctx.cwd, ctx.env, flags.stateDir, flags.stage);
  const fleet = loadFleet(state, loaded, {
    signaling: flags.signaling ?? ctx.env.IFMESH_SIGNALING_URL,
    witness: flags.witness,
  });
  return { loaded, state, fleet };
}
