import { defineCommand, failedIf } from '../../src/cli/define.js';
import { intFlag, RTT_BUDGET_FLAG, rttBudgetMs } from '../../src/cli/options.js';
import { UsageError } from '../../src/errors.js';
import { createProgress } from '../../src/ui/progress.js';
import { formatDuration, formatMs } from '../../src/ui/units.js';

type Flags = {
  agents: string;
  instances: string;
  witnessDb: string;
  json?: boolean;
  withPrometheus?: boolean;
  maxRttP95: string;
  supervisor: 'ifmesh' | 'systemd' | 'none';
};

export default defineCommand<Flags, [], 'state'>({
  path: 'up',
  examples: ['ifmesh up', 'ifmesh up --agents 5 --instances 2 --json'],
  flags: [
    'json',
    RTT_BUDGET_FLAG,
    { flags: '--agents <n>', description: 'agents in the mesh', default: '3' },
    { flags: '--instances <n>', description: 'signaling instances', default: '2' },
    {
      flags: '--witness-db <kind>',
      description: 'sqlite, or postgres: a local PostgreSQL cluster in the state dir',
      default: 'sqlite',
    },
    'state-dir',
    'supervisor',
    {
      flags: '--with-prometheus',
      description: 'also run Prometheus on loopback with the exported rules (monitoring export)',
    },
  ],
  needs: ['state'],
  newState: true,
  async run({ flags, needs, ctx, out }) {
    if (flags.supervisor === 'systemd')
      throw new UsageError(
        '`up` runs a local lab under its own supervisor',
        "run 'ifmesh up', then 'ifmesh systemd install' to hand its services to systemd (or 'ifmesh deploy --supervisor systemd')",
      );
    const agents = intFlag(flags.agents, '--agents', 2, 50);
    const instances = intFlag(flags.instances, '--instances', 1, 8);
    if (flags.witnessDb !== 'sqlite' && flags.witnessDb !== 'postgres')
      throw new UsageError(`--witness-db must be sqlite or postgres, not "${flags.witnessDb}"`);
    const maxRttP95Ms = rttBudgetMs(flags.maxRttP95);
    const progress = await createProgress(ctx, Boolean(flags.json));
    const { up } = await import('../../src/ops/stack/up.js');
    const report = await up(
      {
        state: needs.state,
        agents,
        instances,
        witnessDb: flags.witnessDb,
        progress,
        withPrometheus: Boolean(flags.withPrometheus),
        maxRttP95Ms,
        supervise: flags.supervisor !== 'none',
      },
      ctx,
    ).finally(() => progress.close());
    out.result(report, (r, c) =>
      [
        `${r.verification.ok ? c.green('✓ mesh up and verified') : c.red('✗ mesh up but NOT verified')} in ${formatDuration(r.elapsed_ms)} (${r.started.length} started, ${r.already_running.length} already running)`,
        `  witness    ${r.endpoints.witness} (${r.endpoints.witness_db})`,
        ...r.endpoints.signaling.map((u) => `  signaling  ${u}`),
        ...(r.endpoints.nginx
          ? [`  nginx      ${r.endpoints.nginx} (least_conn in front of the instances)`]
          : []),
        ...r.endpoints.turn.map((u) => `  turn       ${u}`),
        ...(r.endpoints.prometheus
          ? [`  prometheus ${r.endpoints.prometheus} (rules and scrape config in ${r.state_dir}/monitoring)`]
          : []),
        `  agents     ${r.mesh.agents}, ${r.mesh.connected}/${r.mesh.expected} connection reports connected`,
        `  verify     ${r.verification.pongs_received}/${r.verification.pings_sent} signed pings answered, RTT p95 ${formatMs(r.verification.rtt_ms.p95)}`,
        ...r.verification.failures.map((f) => c.red(`  ${f}`)),
        c.dim(`  state in ${r.state_dir}; 'ifmesh status', 'ifmesh logs NAME', 'ifmesh down'`),
      ].join('\n'),
    );
    return failedIf(!report.verification.ok);
  },
});
