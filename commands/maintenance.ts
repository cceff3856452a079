import path from 'node:path';
import type { Command } from 'commander';
import { resolveFleet } from '../src/cli/fleet.js';
import { type ConfigFlags, intFlag, withFlags } from '../src/cli/options.js';
import type { CommandIo } from '../src/cli/registry.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { iceServers } from '../src/ops/agent/ice.js';
import type { MaintenanceTargets } from '../src/ops/maintenance/common.js';
import { applyCron, currentUser, planCron } from '../src/ops/maintenance/cron.js';
import { runDaily } from '../src/ops/maintenance/daily.js';
import { runWeekly } from '../src/ops/maintenance/weekly.js';
import { packageRoot } from '../src/paths.js';
import { resolveStateDir } from '../src/state/state-dir.js';
import { renderCron, renderDaily, renderWeekly } from '../src/ui/maintenance.js';

type Flags = ConfigFlags & { signaling?: string; witness?: string; stateDir?: string; json?: boolean };

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  const targets = async (flags: Flags) => {
    const { loaded, stateDir, fleet } = await resolveFleet(ctx, flags);
    const t: MaintenanceTargets = {
      stateDir,
      signaling: fleet.signaling.map((x) => x.http),
      witness: {
        url: fleet.witness.url,
        apiKey: fleet.witness.api_key,
        queryToken: ctx.env.WITNESS_QUERY_TOKEN || undefined,
      },
    };
    return { loaded, stateDir, fleet, t };
  };
  const shared = (c: Command) => withFlags(c, 'state-dir', 'signaling', 'witness', 'config', 'set', 'json');

  shared(
    cmd
      .command('daily')
      .description(
        'certificate days left, log sizes and rotation, witness cleanup, daily health report (cron-safe)',
      )
      .option('--cert <file>', 'certificate to check (default SIGNALING_TLS_CERT)')
      .option('--key <file>', 'its key (default SIGNALING_TLS_KEY)')
      .option('--warn-days <n>', 'a person is needed when fewer days are left', '7')
      .option('--retain-days <n>', 'witness events older than this are pruned', '30')
      .option('--dry-run', 'show what logrotate would do; no cleanup, no report written'),
  ).action(
    async (
      flags: Flags & { cert?: string; key?: string; warnDays: string; retainDays: string; dryRun?: boolean },
    ) => {
      const { loaded, t } = await targets(flags);
      const report = await runDaily(
        {
          ...t,
          cert: flags.cert ? path.resolve(ctx.cwd, flags.cert) : loaded.config.signalingTlsCert,
          key: flags.key ? path.resolve(ctx.cwd, flags.key) : loaded.config.signalingTlsKey,
          warnDays: intFlag(flags.warnDays, '--warn-days', 0, 3650),
          retainDays: intFlag(flags.retainDays, '--retain-days', 1, 36500),
          dryRun: Boolean(flags.dryRun),
        },
        ctx,
      );
      io.output(flags).result(report, renderDaily);
      if (!report.ok) io.setExitCode(ExitCode.checkFailed);
    },
  );

  shared(
    cmd
      .command('weekly')
      .description(
        'integration check, latency baseline, security events over 7 days, capacity headroom (cron-safe)',
      )
      .option('--agents <n>', 'temporary agents of the integration check', '3')
      .option('--messages <n>', 'signed pings per pair', '20')
      .option('--stun <urls>', 'STUN URLs (default STUN_SERVERS)')
      .option('--loopback', 'the temporary agents gather only 127.0.0.1 candidates')
      .option('--insecure', 'accept a self-signed wss:// certificate')
      .option('--max-agents <n>', 'agents the mesh is sized for', '100')
      .option('--min-headroom <percent>', 'a person is needed below this free capacity', '20')
      .option(
        '--prometheus <url>',
        'also take the latency baseline from Prometheus (default $PROMETHEUS_URL)',
      ),
  ).action(
    async (
      flags: Flags & {
        agents: string;
        messages: string;
        stun?: string;
        loopback?: boolean;
        insecure?: boolean;
        maxAgents: string;
        minHeadroom: string;
        prometheus?: string;
      },
    ) => {
      const { loaded, fleet, t } = await targets(flags);
      const report = await runWeekly(
        {
          ...t,
          exchange: {
            iceServers: iceServers(loaded.config, {
              stun: flags.stun ?? fleet.stun[0],
              turn: '',
            }),
            agents: intFlag(flags.agents, '--agents', 2, 50),
            messages: intFlag(flags.messages, '--messages', 1, 100_000),
            loopbackOnly: Boolean(flags.loopback),
            formTimeoutMs: 20_000,
            rejectUnauthorized: !flags.insecure,
          },
          maxAgents: intFlag(flags.maxAgents, '--max-agents', 1),
          minHeadroom: intFlag(flags.minHeadroom, '--min-headroom', 0, 100) / 100,
          prometheus: flags.prometheus ?? (ctx.env.PROMETHEUS_URL || undefined),
        },
        ctx,
      );
      io.output(flags).result(report, renderWeekly);
      if (!report.ok) io.setExitCode(ExitCode.checkFailed);
    },
  );

  withFlags(
    cmd
      .command('install-cron')
      .description(
        'print (or --write) the crontab lines for daily and weekly maintenance and the logrotate configuration',
      )
      .option('--write', 'install the cron file and the logrotate configuration')
      .option('--cron-file <file>', 'where --write puts the cron lines', '/etc/cron.d/ifmesh')
      .option('--user <name>', 'the user cron runs maintenance as (default: the current user)'),
    'state-dir',
    'json',
  ).action((flags: Flags & { write?: boolean; cronFile: string; user?: string }) => {
    const stateDir = resolveStateDir(ctx.cwd, ctx.env, flags.stateDir);
    const user = flags.user ?? currentUser(ctx.env);
    if (!/^[a-z_][\w.-]*$/i.test(user)) throw new UsageError(`--user ${user} is not a user name`);
    const plan = planCron({
      stateDir,
      cwd: ctx.cwd,
      node: process.execPath,
      bin: path.join(packageRoot(), 'dist/bin/ifmesh.js'),
      user,
      cronFile: path.resolve(ctx.cwd, flags.cronFile),
    });
    io.output(flags).result(flags.write ? applyCron(plan) : plan, renderCron);
  });
}
