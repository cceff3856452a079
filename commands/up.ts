import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { intFlag, rttBudgetMs, shared, withJson, withRttBudget } from '../src/cli/options.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { up } from '../src/ops/stack/up.js';
import { resolveState } from '../src/state/state-dir.js';
import { createProgress } from '../src/ui/progress.js';
import { formatDuration, formatMs } from '../src/ui/units.js';

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withRttBudget(withJson(cmd))
    .option('--agents <n>', 'agents in the mesh', '3')
    .option('--instances <n>', 'signaling instances', '2')
    .option(
      '--witness-db <kind>',
      'sqlite, or postgres: a local PostgreSQL cluster in the state dir',
      'sqlite',
    )
    .addOption(shared('state-dir'))
    .addOption(shared('supervisor'))
    .option(
      '--with-prometheus',
      'also run Prometheus on loopback with the exported rules (monitoring export)',
    )
    .action(
      async (flags: {
        agents: string;
        instances: string;
        witnessDb: string;
        stateDir?: string;
        json?: boolean;
        withPrometheus?: boolean;
        maxRttP95: string;
        supervisor: 'ifmesh' | 'systemd' | 'none';
      }) => {
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
        const out = io.output(flags);
        const progress = await createProgress(ctx, Boolean(flags.json));
        const report = await up(
          {
            state: resolveState(ctx.cwd, ctx.env, flags.stateDir),
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
              ? [
                  `  prometheus ${r.endpoints.prometheus} (rules and scrape config in ${r.state_dir}/monitoring)`,
                ]
              : []),
            `  agents     ${r.mesh.agents}, ${r.mesh.connected}/${r.mesh.expected} connection reports connected`,
            `  verify     ${r.verification.pongs_received}/${r.verification.pings_sent} signed pings answered, RTT p95 ${formatMs(r.verification.rtt_ms.p95)}`,
            ...r.verification.failures.map((f) => c.red(`  ${f}`)),
            c.dim(`  state in ${r.state_dir}; 'ifmesh status', 'ifmesh logs NAME', 'ifmesh down'`),
          ].join('\n'),
        );
        if (!report.verification.ok) io.setExitCode(ExitCode.checkFailed);
      },
    );
}
