import { defineCommand } from '../../src/cli/define.js';
import type { ConfigFlags } from '../../src/cli/options.js';
import { CRON_KINDS } from '../../src/ops/maintenance/cron.js';

type Flags = ConfigFlags & {
  stateDir?: string;
  json?: boolean;
  write?: boolean;
  cronFile: string;
  user?: string;
  renew?: boolean;
  timezone?: string;
  cron?: string;
};

export default defineCommand<Flags, [], 'config' | 'state'>({
  path: 'maintenance install-cron',
  summary:
    'print (or --write) the cron lines for daily and weekly maintenance and periodic key rotation, and the logrotate configuration',
  examples: ['ifmesh maintenance install-cron --write'],
  flags: [
    { flags: '--write', description: 'install the cron file and the logrotate configuration' },
    {
      flags: '--cron-file <file>',
      description: 'where --write puts the cron lines',
      default: '/etc/cron.d/ifmesh',
    },
    { flags: '--user <name>', description: 'the user cron runs maintenance as (default: the current user)' },
    {
      flags: '--renew',
      description: 'the daily line renews the certificate under 7 days (maintenance daily --renew)',
    },
    {
      flags: '--timezone <zone>',
      description: "the timezone cron reads the times in (default: this host's, /etc/localtime)",
    },
    {
      flags: '--cron <kind>',
      description: `which cron runs them: ${CRON_KINDS.join(', ')} (default: detected; only cronie honours CRON_TZ)`,
    },
    'state-dir',
    'config',
    'set',
    'json',
  ],
  needs: ['config', 'state'],
  async run({ flags, needs: { config: loaded, state }, ctx, out }) {
    const { cronPlanFor } = await import('./cron.js');
    const [plan, { applyCron }, { renderCron }] = await Promise.all([
      cronPlanFor(flags, loaded, state, ctx),
      import('../../src/ops/maintenance/cron.js'),
      import('../../src/ui/maintenance.js'),
    ]);
    for (const w of plan.warnings) out.warn(w);
    out.result(flags.write ? applyCron(plan) : plan, renderCron);
  },
});
