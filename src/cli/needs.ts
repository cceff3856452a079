// The one place a command's needs are resolved, once per run, before its `run`: the configuration
// (--config, --set, --stage, and the CA it names), the state directory (--state-dir, --stage) and the
// fleet view (--signaling, --witness), or just its witness. Loaded on first use: --help never reads a config.

import type { Context } from './context.js';
import type { AllNeeds, Need } from './define.js';
import type { FleetFlagsIn } from './fleet.js';

export async function resolveNeeds(
  needs: readonly Need[],
  ctx: Context,
  flags: FleetFlagsIn,
  productionRules?: 'report',
  newState?: true,
): Promise<Partial<AllNeeds>> {
  if (needs.length === 0) return {};
  if (!newState && (needs.includes('state') || needs.includes('witness'))) {
    const { requireExistingState } = await import('./fleet.js');
    requireExistingState(ctx, flags);
  }
  if (needs.includes('fleet')) {
    const { resolveFleet } = await import('./fleet.js');
    const r = await resolveFleet(ctx, flags);
    return { config: r.loaded, state: r.state, fleet: r.fleet };
  }
  const resolved: Partial<AllNeeds> = {};
  const witness = needs.includes('witness');
  const stateful = needs.includes('state') || witness;
  if (stateful) {
    const { resolveState } = await import('../state/state-dir.js');
    resolved.state = resolveState(ctx.cwd, ctx.env, flags.stateDir, flags.stage);
  }
  if (needs.includes('config') || witness) {
    const opts = productionRules ? { productionRules } : {};
    // On an existing state, the env file its services were started on when none is named (canary,
    // rollback, top, …); a command that makes the state (up, deploy) reads only what it is given.
    if (stateful && !newState && resolved.state) {
      const { loadStateConfig } = await import('./fleet.js');
      resolved.config = await loadStateConfig(ctx, flags, resolved.state, opts);
    } else {
      const { loadCommandConfig } = await import('./tls.js');
      resolved.config = await loadCommandConfig(ctx, flags, opts);
    }
  }
  if (witness && resolved.config && resolved.state) {
    const { resolveWitness } = await import('../ops/shared.js');
    resolved.witness = resolveWitness(resolved.config, flags.witness, resolved.state);
  }
  return resolved;
}
