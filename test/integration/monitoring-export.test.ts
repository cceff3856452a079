import { copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { systemExec } from '../../src/cli/context.js';
import { amtool as runAmtool, promtool as runPromtool } from '../../src/exec/prometheus.js';
import { requireBinary } from '../helpers/binaries.js';
import { ROOT, run, tempDir } from '../helpers/cli.js';

const UNIT_TESTS = path.join(ROOT, 'test/monitoring/webrtc-alerts.test.yml');
const RUNBOOK_ALERTS = [
  'WebRTCConnectionFailureRate',
  'WebRTCHighTURNUsage',
  'WebRTCHighLatency',
  'WebRTCDTLSValidationFailure',
  'WebRTCSignatureVerificationFailure',
  'WebRTCHighMemoryUsage',
  'WebRTCHighCPUUsage',
  'WebRTCSignalingServerDown',
];
// The rules the runbook checks elsewhere: the witness down, the certificate under 7 days (and 1).
const ADDED_ALERTS = [
  'WebRTCWitnessDown',
  'WebRTCCertificateExpiringSoon',
  'WebRTCCertificateExpiresWithinADay',
];
const ALERTS = [...RUNBOOK_ALERTS, ...ADDED_ALERTS];

const promtool = (args: string[], opts?: { cwd?: string }) => runPromtool(systemExec, args, opts);
const amtool = (args: string[]) => runAmtool(systemExec, args);

let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});
beforeAll(() => {
  requireBinary('promtool', 'prometheus');
  requireBinary('amtool', 'prometheus-alertmanager');
});

async function exportTo(extra: string[] = [], env: Record<string, string> = {}) {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const r = await run(
    [
      'monitoring',
      'export',
      '--out',
      dir,
      '--signaling',
      'http://127.0.0.1:8443,http://127.0.0.1:8444',
      '--witness',
      'http://127.0.0.1:8080',
      '--json',
      ...extra,
    ],
    { cwd: dir, env },
  );
  return { dir, r, prom: path.join(dir, 'prometheus') };
}

describe('ifmesh monitoring export', () => {
  it('writes a config and rules that promtool accepts, with every runbook alert and its command', async () => {
    const { r, prom, dir } = await exportTo();
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.alerts.map((a: { name: string }) => a.name)).toEqual(ALERTS);
    const config = await promtool(['check', 'config', path.join(prom, 'webrtc-scrape-config.yml')]);
    expect(config.stdout + config.stderr).toContain('SUCCESS');
    expect(config.code).toBe(0);
    const rules = await promtool(['check', 'rules', path.join(prom, 'webrtc-alerts.yml')]);
    expect(rules.stdout).toContain(`SUCCESS: ${ALERTS.length} rules found`);
    expect(rules.code).toBe(0);
    const doc = parse(readFileSync(path.join(prom, 'webrtc-alerts.yml'), 'utf8'));
    for (const rule of doc.groups[0].rules) {
      expect(rule.annotations.command).toMatch(/^ifmesh [a-z]/);
      expect(rule.annotations.description).toContain(`Handle with: ${rule.annotations.command}`);
    }
    const scrape = parse(readFileSync(path.join(prom, 'webrtc-scrape-config.yml'), 'utf8'));
    expect(scrape.scrape_configs.map((j: { job_name: string }) => j.job_name)).toEqual([
      'signaling-server',
      'if-witness',
    ]);
    expect(scrape.scrape_configs[0].static_configs[0].targets).toEqual(['127.0.0.1:8443', '127.0.0.1:8444']);
    // The runbook's intervals: signaling every 10 s, the witness every 30 s.
    expect(scrape.scrape_configs.map((j: { scrape_interval: string }) => j.scrape_interval)).toEqual([
      '10s',
      '30s',
    ]);
    // Alerts go to Alertmanager (its default port unless --alertmanager says otherwise).
    expect(scrape.alerting).toEqual({
      alertmanagers: [{ static_configs: [{ targets: ['127.0.0.1:9093'] }] }],
    });
    const dash = JSON.parse(readFileSync(path.join(dir, 'grafana/webrtc-overview.json'), 'utf8'));
    expect(dash.panels.map((p: { title: string }) => p.title)).toEqual([
      'WebRTC Connection Status',
      'RTT Distribution (P2P vs TURN)',
      'IFMessage Throughput',
      'TURN Fallback Rate',
      'Security Events',
    ]);
    expect(dash.__inputs[0]).toMatchObject({ type: 'datasource', pluginId: 'prometheus' });
    for (const p of dash.panels) {
      expect(p.datasource.uid).toBe('${DS_PROMETHEUS}');
      for (const t of p.targets) expect(t.expr).toMatch(/webrtc_/);
    }
  });

  it("passes promtool's unit tests: each alert fires past its threshold and stays quiet short of it", async () => {
    const { prom } = await exportTo();
    copyFileSync(UNIT_TESTS, path.join(prom, 'webrtc-alerts.test.yml'));
    const t = await promtool(['test', 'rules', 'webrtc-alerts.test.yml'], { cwd: prom });
    expect(t.stdout + t.stderr).toContain('SUCCESS');
    expect(t.code).toBe(0);
    // the unit tests cover every alert both ways
    const tests = parse(readFileSync(UNIT_TESTS, 'utf8')).tests as { name: string }[];
    for (const a of ALERTS) {
      expect(tests.some((x) => x.name.startsWith(`${a} fires`))).toBe(true);
      expect(tests.some((x) => x.name.startsWith(`${a} stays quiet`))).toBe(true);
    }
  });

  it('takes thresholds from --threshold: a raised CPU threshold no longer fires on 90 %', async () => {
    const { prom, r } = await exportTo(['--threshold', 'cpu_ratio=0.95']);
    expect(r.code).toBe(0);
    copyFileSync(UNIT_TESTS, path.join(prom, 'webrtc-alerts.test.yml'));
    const t = await promtool(['test', 'rules', 'webrtc-alerts.test.yml'], { cwd: prom });
    expect(t.code).not.toBe(0);
    expect(t.stdout + t.stderr).toContain('WebRTCHighCPUUsage');
    expect(t.stdout + t.stderr).not.toContain('WebRTCHighMemoryUsage');
  });

  it("shortens every alert's for: with --for", async () => {
    const { prom } = await exportTo(['--for', '10s', '--scrape-interval', '1s']);
    const doc = parse(readFileSync(path.join(prom, 'webrtc-alerts.yml'), 'utf8'));
    expect(doc.groups[0].rules.map((r: { for: string }) => r.for)).toEqual(Array(ALERTS.length).fill('10s'));
    const scrape = parse(readFileSync(path.join(prom, 'webrtc-scrape-config.yml'), 'utf8'));
    expect(scrape.global).toEqual({ scrape_interval: '1s', evaluation_interval: '1s' });
    // A shorter signaling interval leaves the witness at the runbook's 30 s.
    expect(scrape.scrape_configs[1]).toMatchObject({ job_name: 'if-witness', scrape_interval: '30s' });
    expect((await promtool(['check', 'config', path.join(prom, 'webrtc-scrape-config.yml')])).code).toBe(0);
  });

  it('writes an Alertmanager config amtool accepts: critical to PagerDuty, warnings to Slack, secrets in 0600 files', async () => {
    const env = {
      PAGERDUTY_INTEGRATION_KEY: 'pd-routing-key-secret',
      PAGERDUTY_EVENTS_URL: 'https://events.pagerduty.example/v2/enqueue',
      SLACK_WEBHOOK_URL: 'https://hooks.slack.example/services/T000/B000/secretpath',
    };
    const { r, dir } = await exportTo([], env);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.routing).toEqual({ critical: 'pagerduty', warning: 'slack', warnings: [] });
    const file = path.join(dir, 'alertmanager', 'alertmanager.yml');
    expect(report.files.alertmanager).toBe(file);
    const checked = await amtool(['check-config', file]);
    expect(checked.stdout + checked.stderr).toContain('SUCCESS');
    expect(checked.code).toBe(0);
    const text = readFileSync(file, 'utf8');
    // Secrets stay out of the configuration, the report and the output.
    for (const secret of ['pd-routing-key-secret', 'secretpath']) {
      expect(text).not.toContain(secret);
      expect(r.stdout + r.stderr).not.toContain(secret);
    }
    const am = parse(text);
    expect(am.route.routes).toEqual([
      expect.objectContaining({ matchers: ['severity="critical"'], receiver: 'pagerduty' }),
      expect.objectContaining({ matchers: ['severity="warning"'], receiver: 'slack' }),
    ]);
    const pd = am.receivers.find((x: { name: string }) => x.name === 'pagerduty').pagerduty_configs[0];
    expect(pd.url).toBe(env.PAGERDUTY_EVENTS_URL);
    expect(readFileSync(pd.routing_key_file, 'utf8').trim()).toBe(env.PAGERDUTY_INTEGRATION_KEY);
    expect(statSync(pd.routing_key_file).mode & 0o777).toBe(0o600);
    const slack = am.receivers.find((x: { name: string }) => x.name === 'slack').slack_configs[0];
    expect(readFileSync(slack.api_url_file, 'utf8').trim()).toBe(env.SLACK_WEBHOOK_URL);
    expect(statSync(slack.api_url_file).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(slack.api_url_file)).mode & 0o777).toBe(0o700);
    // Every rule's severity has a route.
    const severities = new Set(report.alerts.map((a: { severity: string }) => a.severity));
    expect(severities).toEqual(new Set(['critical', 'warning']));
  });

  it('says loudly where alerts cannot go: Slack only takes the pages; nothing configured reaches nobody', async () => {
    const slackOnly = await exportTo([], { SLACK_WEBHOOK_URL: 'https://hooks.slack.example/services/x' });
    expect(slackOnly.r.code).toBe(0);
    expect(JSON.parse(slackOnly.r.stdout).routing).toMatchObject({ critical: 'slack', warning: 'slack' });
    expect(slackOnly.r.stderr).toMatch(
      /warning: PAGERDUTY_INTEGRATION_KEY is not set: critical alerts go to Slack, nobody is paged/,
    );
    const none = await exportTo(['--alertmanager', '']);
    expect(none.r.code).toBe(0);
    expect(JSON.parse(none.r.stdout).routing).toMatchObject({ critical: null, warning: null });
    expect(none.r.stderr).toMatch(/alerts reach nobody/);
    const file = path.join(none.dir, 'alertmanager', 'alertmanager.yml');
    expect((await amtool(['check-config', file])).code).toBe(0);
    const scrape = parse(readFileSync(path.join(none.prom, 'webrtc-scrape-config.yml'), 'utf8'));
    expect(scrape.alerting).toBeUndefined();
  });

  it('refuses a bad threshold or duration with exit 2 and writes nothing', async () => {
    for (const bad of [
      ['--threshold', 'cpu=0.5'],
      ['--threshold', 'cpu_ratio=lots'],
      ['--for', '5 minutes'],
      ['--group-wait', 'soon'],
    ]) {
      const { dir, r } = await exportTo(bad);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')[0]).toMatch(/^error: --(threshold|for|group-wait) /);
      expect(existsSync(path.join(dir, 'prometheus'))).toBe(false);
      expect(JSON.parse(r.stdout).error.code).toBe('usage');
    }
  });
});
