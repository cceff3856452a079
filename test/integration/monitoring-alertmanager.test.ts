// Alerts page someone: `monitoring export` writes an Alertmanager configuration from the incident
// notification settings, and a real chain delivers — a signaling process and an agent reporting its
// memory, a witness, Prometheus evaluating the exported rules, a real Alertmanager (loopback,
// ephemeral port, no clustering) — to local receivers standing for PagerDuty's Events API v2 and a
// Slack webhook. A warning (an agent over a lowered memory threshold) reaches Slack only; the witness
// going down is critical and pages PagerDuty only, with the routing key from the secret file.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { systemExec } from '../../src/cli/context.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import { amtool, type RunningAlertmanager, type RunningPrometheus } from '../../src/exec/prometheus.js';
import { requireBinary } from '../helpers/binaries.js';
import { run, tempDir } from '../helpers/cli.js';
import { receiver } from '../helpers/notify-receivers.js';
import { freePort, type Service, startSignalingProcess } from '../helpers/processes.js';
import { promAlerts, startTestAlertmanager, startTestPrometheus } from '../helpers/prometheus.js';
import { waitForValue } from '../helpers/wait.js';
import { type RunningWitness, startWitness } from '../helpers/witness.js';

const ROUTING_KEY = 'routing-key-e2e-7f3a';
const { dir, cleanup } = tempDir();
let sig: Service;
let witness: RunningWitness;
let agent: MeshAgent;
let prom: RunningPrometheus | undefined;
let am: RunningAlertmanager | undefined;
let witnessStopped = false;

beforeAll(async () => {
  requireBinary('amtool', 'prometheus-alertmanager');
  requireBinary('prometheus-alertmanager', 'prometheus-alertmanager');
  requireBinary('prometheus', 'prometheus');
  witness = await startWitness();
  sig = await startSignalingProcess();
  agent = new MeshAgent({
    agentId: 'am-1',
    identity: generateKeyPair(),
    signalingUrls: [sig.url],
    iceServers: [],
    loopbackOnly: true,
    statsIntervalMs: 300,
    memoryIntervalMs: 300,
  });
  agent.start();
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await prom?.stop();
  await am?.stop();
  await sig?.stop();
  if (!witnessStopped) await witness?.stop();
  cleanup();
});

describe('monitoring export → Prometheus → Alertmanager → PagerDuty / Slack', () => {
  it('routes a warning to Slack and a critical alert (witness down) to PagerDuty', async () => {
    const remote = await receiver();
    const amPort = await freePort();
    const r = await run(
      [
        'monitoring',
        'export',
        '--out',
        dir,
        '--signaling',
        String(sig.ready.http_url),
        '--witness',
        witness.url,
        '--scrape-interval',
        '1s',
        '--witness-scrape-interval',
        '1s',
        '--for',
        '1s',
        '--group-wait',
        '1s',
        '--alertmanager',
        `127.0.0.1:${amPort}`,
        // Any agent is over 1 MiB: the warning fires on a healthy mesh.
        '--threshold',
        'memory_mb=1',
        '--json',
      ],
      {
        cwd: dir,
        env: {
          PAGERDUTY_INTEGRATION_KEY: ROUTING_KEY,
          PAGERDUTY_EVENTS_URL: `${remote.base}/pagerduty`,
          SLACK_WEBHOOK_URL: `${remote.base}/slack`,
        },
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(ROUTING_KEY);
    const report = JSON.parse(r.stdout);
    expect(report.routing).toEqual({ critical: 'pagerduty', warning: 'slack', warnings: [] });
    const amFile = report.files.alertmanager as string;
    expect(readFileSync(amFile, 'utf8')).not.toContain(ROUTING_KEY);
    expect(readFileSync(amFile, 'utf8')).not.toContain(`${remote.base}/slack`);
    const keyFile = path.join(path.dirname(amFile), 'secrets', 'pagerduty-routing-key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);

    const checked = await amtool(systemExec, ['check-config', amFile]);
    expect(checked.stdout + checked.stderr, checked.stderr).toContain('SUCCESS');
    expect(checked.code).toBe(0);

    am = await startTestAlertmanager(amFile, dir, amPort);
    prom = await startTestPrometheus(report.files.scrape_config, dir);

    // The warning: Slack, with the rule's summary and command.
    const slack = await waitForValue(
      () =>
        remote.got.find(
          (g) => g.path === '/slack' && JSON.stringify(g.body).includes('WebRTCHighMemoryUsage'),
        ),
      'the memory warning delivered to Slack',
      { timeoutMs: 45_000, intervalMs: 200 },
    );
    const text = JSON.stringify(slack.body);
    expect(text).toContain('[FIRING');
    expect(text).toContain('WebRTC memory usage exceeds 1MB');
    expect(text).toContain('Handle with: ifmesh top');

    // The critical one: the witness goes away, Prometheus sees it down, PagerDuty is paged.
    await witness.stop();
    witnessStopped = true;
    const page = await waitForValue(
      () =>
        remote.got.find(
          (g) => g.path === '/pagerduty' && JSON.stringify(g.body).includes('WebRTCWitnessDown'),
        ),
      'the witness-down page delivered to PagerDuty',
      { timeoutMs: 45_000, intervalMs: 200 },
    );
    expect(page.body).toMatchObject({
      routing_key: ROUTING_KEY,
      event_action: 'trigger',
      payload: {
        summary: 'WebRTCWitnessDown: IF.witness audit service is down',
        severity: 'critical',
        custom_details: { command: 'ifmesh status' },
      },
    });
    expect(typeof page.body.dedup_key).toBe('string');
    const firing = (await promAlerts(prom.url)).filter((a) => a.state === 'firing');
    expect(firing.map((a) => a.labels.alertname)).toEqual(
      expect.arrayContaining(['WebRTCWitnessDown', 'WebRTCHighMemoryUsage']),
    );

    // Each severity went to its own channel only.
    const paths = (name: string) =>
      remote.got.filter((g) => JSON.stringify(g.body).includes(name)).map((g) => g.path);
    expect(new Set(paths('WebRTCWitnessDown'))).toEqual(new Set(['/pagerduty']));
    expect(new Set(paths('WebRTCHighMemoryUsage'))).toEqual(new Set(['/slack']));
  }, 120_000);
});
