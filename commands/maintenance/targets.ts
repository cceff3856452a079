import type { Context } from '../../src/cli/context.js';
import { resolveFleet } from '../../src/cli/fleet.js';
import { ConfigError } from '../../src/errors.js';
import { configuredNotifiers } from '../../src/ops/incident/notify/send.js';
import type { MaintenanceTargets } from '../../src/ops/maintenance/common.js';
import { tellConfigBroken } from '../../src/ops/maintenance/config-notice.js';
import { noticeLine } from '../../src/ui/maintenance.js';
import type { Output } from '../../src/ui/output.js';
import type { MaintenanceFlags } from './flags.js';

/**
 * The fleet `maintenance daily|weekly` looks after. Resolved here, not as a need: cron's only reader
 * is a log file, so a configuration that stops maintenance is told to the team before the error.
 */
export async function maintenanceTargets(
  what: string,
  flags: MaintenanceFlags,
  ctx: Context,
  out: () => Output,
) {
  const resolved = await resolveFleet(ctx, flags).catch(async (err: unknown) => {
    if (err instanceof ConfigError) {
      const load = { cwd: ctx.cwd, env: ctx.env, file: flags.config, flags: flags.set };
      const told = await tellConfigBroken(what, err, load, flags.notify, ctx);
      if (told) out().info(noticeLine(told, out().c));
    }
    throw err;
  });
  const { loaded, state, fleet } = resolved;
  const t: MaintenanceTargets = {
    state,
    signaling: fleet.signaling.map((x) => x.http),
    witness: {
      url: fleet.witness.url,
      apiKey: fleet.witness.api_key,
      queryToken: ctx.env.WITNESS_QUERY_TOKEN || loaded.raw.WITNESS_QUERY_TOKEN || undefined,
    },
  };
  const notice = { notifiers: configuredNotifiers(loaded.config), notify: flags.notify };
  return { loaded, state, fleet, t, notice };
}
