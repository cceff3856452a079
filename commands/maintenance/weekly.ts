import { defineCommand, failedIf } from '../../src/cli/define.js';
import { intFlag, RTT_BUDGET_FLAG, rttBudgetMs, TEMP_AGENT_FLAGS } from '../../src/cli/options.js';
import { type MaintenanceFlags, SHARED } from './flags.js';

type Flags = MaintenanceFlags & {
  agents: string;
  messages: string;
  stun?: string;
  loopback?: boolean;
  insecure?: boolean;
  maxAgents?: string;
  minHeadroom: string;
  prometheus?: string;
  maxRttP95: string;
};

export default defineCommand<Flags>({
  path: 'maintenance weekly',
  summary: 'integration check, latency baseline, security events over 7 days, capacity headroom (cron-safe)',
  examples: ['ifmesh maintenance weekly --json'],
  flags: [
    { flags: '--agents <n>', description: 'temporary agents of the integration check', default: '3' },
    { flags: '--messages <n>', description: 'signed pings per pair', default: '20' },
    ...TEMP_AGENT_FLAGS,
    {
      flags: '--max-agents <n>',
      description: 'agents the mesh is sized for (default MAINTENANCE_MAX_AGENTS)',
    },
    {
      flags: '--min-headroom <percent>',
      description: 'a person is needed below this free capacity',
      default: '20',
    },
    {
      flags: '--prometheus <url>',
      description: 'also take the latency baseline from Prometheus (default $PROMETHEUS_URL)',
    },
    RTT_BUDGET_FLAG,
    ...SHARED,
  ],
  async run({ flags, ctx, io }) {
    const [{ maintenanceTargets }, { runWeekly }, { iceServers }, { renderWeekly }] = await Promise.all([
      import('./targets.js'),
      import('../../src/ops/maintenance/weekly.js'),
      import('../../src/ops/agent/ice.js'),
      import('../../src/ui/maintenance.js'),
    ]);
    const out = () => io.output(flags);
    const { loaded, fleet, t, notice } = await maintenanceTargets('weekly', flags, ctx, out);
    const report = await runWeekly(
      {
        ...t,
        exchange: {
          iceServers: iceServers(loaded.config, { stun: flags.stun ?? fleet.stun[0], turn: '' }),
          agents: intFlag(flags.agents, '--agents', 2, 50),
          messages: intFlag(flags.messages, '--messages', 1, 100_000),
          loopbackOnly: Boolean(flags.loopback),
          formTimeoutMs: 20_000,
          rejectUnauthorized: !flags.insecure,
          ca: ctx.tls?.ca,
          maxRttP95Ms: rttBudgetMs(flags.maxRttP95),
        },
        maxAgents: flags.maxAgents
          ? intFlag(flags.maxAgents, '--max-agents', 1)
          : loaded.config.maintenanceMaxAgents,
        minHeadroom: intFlag(flags.minHeadroom, '--min-headroom', 0, 100) / 100,
        prometheus: flags.prometheus ?? (ctx.env.PROMETHEUS_URL || undefined),
        notice,
      },
      ctx,
    );
    out().result(report, renderWeekly);
    return failedIf(!report.ok);
  },
});
