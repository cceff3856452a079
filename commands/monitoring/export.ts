import path from 'node:path';
import { defineCommand } from '../../src/cli/define.js';
import { type MonitoringFlags, TARGET_FLAGS } from './flags.js';

type Flags = MonitoringFlags & {
  out: string;
  for?: string;
  scrapeInterval: string;
  witnessScrapeInterval: string;
  alertmanager: string;
  groupWait: string;
};

export default defineCommand<Flags, [], 'config' | 'state'>({
  path: 'monitoring export',
  summary:
    'write the Prometheus scrape config, alert rules, Grafana dashboard and the Alertmanager routing (critical → PagerDuty, warning → Slack)',
  examples: ['ifmesh monitoring export --out monitoring'],
  flags: [
    {
      flags: '--out <dir>',
      description: 'directory to write prometheus/, grafana/ and alertmanager/ into',
      default: '.',
    },
    { flags: '--for <duration>', description: "replace every alert's for: (e.g. 10s for a test)" },
    {
      flags: '--scrape-interval <duration>',
      description: 'scrape and rule evaluation interval (signaling)',
      default: '10s',
    },
    {
      flags: '--witness-scrape-interval <duration>',
      description: 'the witness job’s scrape interval',
      default: '30s',
    },
    {
      flags: '--alertmanager <host:port,…>',
      description: 'the Alertmanagers Prometheus sends alerts to ("" for none)',
      default: '127.0.0.1:9093',
    },
    {
      flags: '--group-wait <duration>',
      description: 'Alertmanager group_wait: how long a first notice waits',
      default: '30s',
    },
    ...TARGET_FLAGS,
  ],
  needs: ['config', 'state'],
  newState: true,
  async run({ flags, needs: { config, state }, ctx, out }) {
    const [
      { alertChannels },
      { exportMonitoring },
      { resolveTargets },
      { parseThresholds },
      { renderExport },
    ] = await Promise.all([
      import('../../src/ops/monitoring/alertmanager.js'),
      import('../../src/ops/monitoring/export.js'),
      import('../../src/ops/monitoring/monitor.js'),
      import('../../src/ops/monitoring/thresholds.js'),
      import('../../src/ui/monitoring.js'),
    ]);
    const targets = resolveTargets(flags, ctx.env, config, state);
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
      channels: alertChannels(config.config),
      groupWait: flags.groupWait,
    });
    for (const w of report.routing.warnings) out.warn(w);
    out.result(report, renderExport);
  },
});
