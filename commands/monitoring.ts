import path from 'node:path';
import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { type ConfigFlags, durationFlag, withFlags } from '../src/cli/options.js';
import { loadCommandConfig } from '../src/cli/tls.js';
import { ExitCode } from '../src/errors.js';
import { alertChannels } from '../src/ops/monitoring/alertmanager.js';
import { exportMonitoring } from '../src/ops/monitoring/export.js';
import { resolveTargets, runCheck } from '../src/ops/monitoring/monitor.js';
import { parseThresholds } from '../src/ops/monitoring/thresholds.js';
import { resolveState } from '../src/state/state-dir.js';
import { renderCheck, renderExport } from '../src/ui/monitoring.js';

type Flags = ConfigFlags & {
  json?: boolean;
  signaling?: string;
  witness?: string;
  stateDir?: string;
  threshold?: string[];
};

type ExportFlags = Flags & {
  out: string;
  for?: string;
  scrapeInterval: string;
  witnessScrapeInterval: string;
  alertmanager: string;
  groupWait: string;
};

const collect = (v: string, prev: string[] = []) => [...prev, v];

function targetOptions(cmd: Command): Command {
  return withFlags(cmd, 'signaling', 'witness', 'state-dir', 'config', 'set', 'json').option(
    '--threshold <NAME=VALUE>',
    'override a threshold, e.g. memory_mb=500; repeatable',
    collect,
  );
}

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  targetOptions(
    cmd
      .command('export')
      .description(
        'write the Prometheus scrape config, alert rules, Grafana dashboard and the Alertmanager routing (critical → PagerDuty, warning → Slack)',
      )
      .option('--out <dir>', 'directory to write prometheus/, grafana/ and alertmanager/ into', '.')
      .option('--for <duration>', "replace every alert's for: (e.g. 10s for a test)")
      .option('--scrape-interval <duration>', 'scrape and rule evaluation interval (signaling)', '10s')
      .option('--witness-scrape-interval <duration>', 'the witness job’s scrape interval', '30s')
      .option(
        '--alertmanager <host:port,…>',
        'the Alertmanagers Prometheus sends alerts to ("" for none)',
        '127.0.0.1:9093',
      )
      .option('--group-wait <duration>', 'Alertmanager group_wait: how long a first notice waits', '30s'),
  ).action(async (flags: ExportFlags) => {
    const loaded = await loadCommandConfig(ctx, flags);
    const state = resolveState(ctx.cwd, ctx.env, flags.stateDir);
    const targets = resolveTargets(flags, ctx.env, loaded, state);
    const hostPort = (u: string) => new URL(u).host;
    const report = exportMonitoring({
      outDir: path.resolve(ctx.cwd, flags.out),
      signaling: targets.signaling.map(hostPort),
      witness: targets.witness ? hostPort(targets.witness.url) : undefined,
      thresholds: parseThresholds(flags.threshold),
      forOverride: flags.for,
      scrapeInterval: flags.scrapeInterval,
      witnessScrapeInterval: flags.witnessScrapeInterval,
      alertmanagers: flags.alertmanager
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      channels: alertChannels(loaded.config),
      groupWait: flags.groupWait,
    });
    const out = io.output(flags);
    for (const w of report.routing.warnings) out.warn(w);
    out.result(report, renderExport);
  });
  targetOptions(
    cmd
      .command('check')
      .description("evaluate the runbook's metric tables against the live mesh; exit 1 on any alert")
      .option('--sample-ms <duration>', 'time between the two looks at the mesh (CPU is a rate)', '1s'),
  ).action(async (flags: Flags & { sampleMs: string }) => {
    const loaded = await loadCommandConfig(ctx, flags);
    const state = resolveState(ctx.cwd, ctx.env, flags.stateDir);
    const report = await runCheck(
      {
        targets: resolveTargets(flags, ctx.env, loaded, state),
        thresholds: parseThresholds(flags.threshold),
        sampleMs: durationFlag(flags.sampleMs, '--sample-ms', { min: 0, max: 60_000 }),
      },
      ctx,
    );
    io.output(flags).result(report, renderCheck);
    if (!report.ok) io.setExitCode(ExitCode.checkFailed);
  });
}
