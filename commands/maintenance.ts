import path from 'node:path';
import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { resolveFleet } from '../src/cli/fleet.js';
import { type ConfigFlags, intFlag, rttBudgetMs, withFlags, withRttBudget } from '../src/cli/options.js';
import { loadCommandConfig } from '../src/cli/tls.js';
import { ConfigError, ExitCode, UsageError } from '../src/errors.js';
import { iceServers } from '../src/ops/agent/ice.js';
import { configuredNotifiers } from '../src/ops/incident/notify/send.js';
import type { MaintenanceTargets } from '../src/ops/maintenance/common.js';
import { tellConfigBroken } from '../src/ops/maintenance/config-notice.js';
import {
  applyCron,
  CRON_KINDS,
  type CronKind,
  cronWarnings,
  currentUser,
  detectCron,
  hostTimezone,
  planCron,
} from '../src/ops/maintenance/cron.js';
import { runDaily } from '../src/ops/maintenance/daily.js';
import { runWeekly } from '../src/ops/maintenance/weekly.js';
import { packageRoot } from '../src/paths.js';
import { resolveState } from '../src/state/state-dir.js';
import { noticeLine, renderCron, renderDaily, renderWeekly } from '../src/ui/maintenance.js';

type Flags = ConfigFlags & {
  signaling?: string;
  witness?: string;
  stateDir?: string;
  json?: boolean;
  notify: boolean;
};

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  const targets = async (what: string, flags: Flags) => {
    const resolved = await resolveFleet(ctx, flags).catch(async (err: unknown) => {
      // Cron's only reader is a log file: a configuration that stops maintenance is told to the team.
      if (err instanceof ConfigError) {
        const load = { cwd: ctx.cwd, env: ctx.env, file: flags.config, flags: flags.set };
        const told = await tellConfigBroken(what, err, load, flags.notify, ctx);
        const out = io.output(flags);
        if (told) out.info(noticeLine(told, out.c));
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
  };
  const shared = (c: Command) =>
    withFlags(c, 'state-dir', 'signaling', 'witness', 'config', 'set', 'json').option(
      '--no-notify',
      'do not tell the team (Slack, e-mail) what needs a person',
    );

  shared(
    cmd
      .command('daily')
      .description(
        'certificate days left (renewed with --renew), log sizes and rotation, witness cleanup, key rotation health, daily health report (cron-safe)',
      )
      .option('--cert <file>', 'certificate to check (default SIGNALING_TLS_CERT)')
      .option('--key <file>', 'its key (default SIGNALING_TLS_KEY)')
      .option('--warn-days <n>', 'a person is needed when fewer days are left', '7')
      .option('--renew', 'renew the certificate (certbot) when fewer than --warn-days are left')
      .option('--retain-days <n>', 'witness events older than this are pruned', '30')
      .option('--dry-run', 'show what logrotate would do; no cleanup, no renewal, no report, nobody told'),
  ).action(
    async (
      flags: Flags & {
        cert?: string;
        key?: string;
        warnDays: string;
        retainDays: string;
        renew?: boolean;
        dryRun?: boolean;
      },
    ) => {
      const { loaded, t, notice } = await targets('daily', flags);
      const c = loaded.config;
      const report = await runDaily(
        {
          ...t,
          cert: flags.cert ? path.resolve(ctx.cwd, flags.cert) : c.signalingTlsCert,
          key: flags.key ? path.resolve(ctx.cwd, flags.key) : c.signalingTlsKey,
          warnDays: intFlag(flags.warnDays, '--warn-days', 0, 3650),
          retainDays: intFlag(flags.retainDays, '--retain-days', 1, 36500),
          renew: Boolean(flags.renew),
          production: c.productionMode,
          certbotConfigDir: c.certbotConfigDir,
          keyRotation: { enabled: c.enableSrtpKeyRotation, intervalMs: c.srtpKeyRotationIntervalMs },
          notice,
          dryRun: Boolean(flags.dryRun),
        },
        ctx,
      );
      io.output(flags).result(report, renderDaily);
      if (!report.ok) io.setExitCode(ExitCode.checkFailed);
    },
  );

  shared(
    withRttBudget(
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
        .option('--max-agents <n>', 'agents the mesh is sized for (default MAINTENANCE_MAX_AGENTS)')
        .option('--min-headroom <percent>', 'a person is needed below this free capacity', '20')
        .option(
          '--prometheus <url>',
          'also take the latency baseline from Prometheus (default $PROMETHEUS_URL)',
        ),
    ),
  ).action(
    async (
      flags: Flags & {
        agents: string;
        messages: string;
        stun?: string;
        loopback?: boolean;
        insecure?: boolean;
        maxAgents?: string;
        minHeadroom: string;
        prometheus?: string;
        maxRttP95: string;
      },
    ) => {
      const { loaded, fleet, t, notice } = await targets('weekly', flags);
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
      io.output(flags).result(report, renderWeekly);
      if (!report.ok) io.setExitCode(ExitCode.checkFailed);
    },
  );

  withFlags(
    cmd
      .command('install-cron')
      .description(
        'print (or --write) the cron lines for daily and weekly maintenance and periodic key rotation, and the logrotate configuration',
      )
      .option('--write', 'install the cron file and the logrotate configuration')
      .option('--cron-file <file>', 'where --write puts the cron lines', '/etc/cron.d/ifmesh')
      .option('--user <name>', 'the user cron runs maintenance as (default: the current user)')
      .option('--renew', 'the daily line renews the certificate under 7 days (maintenance daily --renew)')
      .option(
        '--timezone <zone>',
        "the timezone cron reads the times in (default: this host's, /etc/localtime)",
      )
      .option(
        '--cron <kind>',
        `which cron runs them: ${CRON_KINDS.join(', ')} (default: detected; only cronie honours CRON_TZ)`,
      ),
    'state-dir',
    'config',
    'set',
    'json',
  ).action(
    async (
      flags: Flags & {
        write?: boolean;
        cronFile: string;
        user?: string;
        renew?: boolean;
        timezone?: string;
        cron?: string;
      },
    ) => {
      const loaded = await loadCommandConfig(ctx, flags);
      const state = resolveState(ctx.cwd, ctx.env, flags.stateDir);
      const user = flags.user ?? currentUser(ctx.env);
      if (!/^[a-z_][\w.-]*$/i.test(user)) throw new UsageError(`--user ${user} is not a user name`);
      if (flags.cron && !CRON_KINDS.includes(flags.cron as CronKind))
        throw new UsageError(`--cron ${flags.cron} is not one of ${CRON_KINDS.join(', ')}`);
      const c = loaded.config;
      const plan = planCron({
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
      const out = io.output(flags);
      for (const w of plan.warnings) out.warn(w);
      out.result(flags.write ? applyCron(plan) : plan, renderCron);
    },
  );
}
