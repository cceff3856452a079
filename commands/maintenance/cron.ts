import path from 'node:path';
import type { Context } from '../../src/cli/context.js';
import type { LoadedConfig } from '../../src/config/load.js';
import { UsageError } from '../../src/errors.js';
import {
  CRON_KINDS,
  type CronKind,
  type CronPlan,
  cronWarnings,
  currentUser,
  detectCron,
  hostTimezone,
  planCron,
} from '../../src/ops/maintenance/cron.js';
import { packageRoot } from '../../src/paths.js';
import type { StateDir } from '../../src/state/state-dir.js';

/** install-cron's plan from its flags (--user and --cron checked) and the configuration. */
export async function cronPlanFor(
  flags: { user?: string; cron?: string; cronFile: string; renew?: boolean; timezone?: string },
  loaded: LoadedConfig,
  state: StateDir,
  ctx: Context,
): Promise<CronPlan> {
  const user = flags.user ?? currentUser(ctx.env);
  if (!/^[a-z_][\w.-]*$/i.test(user)) throw new UsageError(`--user ${user} is not a user name`);
  if (flags.cron && !CRON_KINDS.includes(flags.cron as CronKind))
    throw new UsageError(`--cron ${flags.cron} is not one of ${CRON_KINDS.join(', ')}`);
  const c = loaded.config;
  return planCron({
    state,
    cwd: ctx.cwd,
    node: process.execPath,
    bin: path.join(packageRoot(), 'dist/bin/ifmesh.js'),
    user,
    cronFile: path.resolve(ctx.cwd, flags.cronFile),
    configFile: loaded.file ? path.resolve(ctx.cwd, loaded.file) : undefined,
    maxAgents: c.maintenanceMaxAgents,
    renew: Boolean(flags.renew),
    keyRotation: { enabled: c.enableSrtpKeyRotation, intervalMs: c.srtpKeyRotationIntervalMs },
    timezone: flags.timezone ?? hostTimezone(),
    cron: (flags.cron as CronKind | undefined) ?? detectCron(),
    now: ctx.clock.now(),
    warnings: cronWarnings(loaded),
  });
}
