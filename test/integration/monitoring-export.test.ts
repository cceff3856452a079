import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { systemExec } from '../../src/cli/context.js';
import { promtool as runPromtool } from '../../src/exec/prometheus.js';
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

const promtool = (args: string[], opts?: { cwd?: string }) => runPromtool(systemExec, args, opts);

let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});
beforeAll(() => {
  requireBinary('promtool', 'prometheus');
});

async function exportTo(extra: string[] = []) {
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
    { cwd: dir },
  );
  return { dir, r, prom: path.join(dir, 'prometheus') };
}

describe('ifmesh monitoring export', () => {
  it('writes a config and rules that promtool accepts, with every runbook alert and its command', async () => {
    const { r, prom, dir } = await exportTo();
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.alerts.map((a: { name: string }) => a.name)).toEqual(RUNBOOK_ALERTS);
    const config = await promtool(['check', 'config', path.join(prom, 'webrtc-scrape-config.yml')]);
    expect(config.stdout + config.stderr).toContain('SUCCESS');
    expect(config.code).toBe(0);
    const rules = await promtool(['check', 'rules', path.join(prom, 'webrtc-alerts.yml')]);
    expect(rules.stdout).toContain('SUCCESS: 8 rules found');
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
    for (const a of RUNBOOK_ALERTS) {
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
    expect(doc.groups[0].rules.map((r: { for: string }) => r.for)).toEqual(Array(8).fill('10s'));
    const scrape = parse(readFileSync(path.join(prom, 'webrtc-scrape-config.yml'), 'utf8'));
    expect(scrape.global).toEqual({ scrape_interval: '1s', evaluation_interval: '1s' });
    expect((await promtool(['check', 'config', path.join(prom, 'webrtc-scrape-config.yml')])).code).toBe(0);
  });

  it('refuses a bad threshold or duration with exit 2 and writes nothing', async () => {
    for (const bad of [
      ['--threshold', 'cpu=0.5'],
      ['--threshold', 'cpu_ratio=lots'],
      ['--for', '5 minutes'],
    ]) {
      const { dir, r } = await exportTo(bad);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')[0]).toMatch(/^error: --(threshold|for) /);
      expect(existsSync(path.join(dir, 'prometheus'))).toBe(false);
      expect(JSON.parse(r.stdout).error.code).toBe('usage');
    }
  });
});
