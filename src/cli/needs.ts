// The one place a command's needs are resolved, once per run, before its `run`: the configuration
// (--config, --set, --stage, and the CA it names), the state directory (--state-dir, --stage) and the
// fleet view (--signaling, --witness). Loaded on first use: --help never reads a config.

import type { Context } from './context.js';
import type { AllNeeds, Need } from './define.js';
import type { FleetFlagsIn } from './fleet.js';

export async function resolveNeeds(
  needs: readonly Need[],
  ctx: Context,
  flags: FleetFlagsIn,
  productionRules?: 'report',
): Promise<Partial<AllNeeds>> {
  if (needs.length === 0) return {};
  if (needs.includes('fleet')) {
    const { resolveFleet } = await import('./fleet.js');
    const r = await resolveFleet(ctx, flags);
    return { config: r.loaded, state: r.state, fleet: r.fleet };
  }
  const resolved: Partial<AllNeeds> = {};
  if (needs.includes('config')) {
    const { loadCommandConfig } = await import('./tls.js');
    resolved.config = await loadCommandConfig(ctx, flags, productionRules ? { productionRules } : {});
  }
  if (needs.includes('state')) {
    const { resolveState } = await import('../state/state-dir.js');
    resolved.state = resolveState(ctx.cwd, ctx.env, flags.stateDir, flags.stage);
  }
  return resolved;
}
