import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { get } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import type { RunningPrometheus } from '../../src/exec/prometheus.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { alertDefs } from '../../src/ops/monitoring/alerts.js';
import { PANELS } from '../../src/ops/monitoring/dashboard.js';
import { parseExposition } from '../../src/ops/monitoring/exposition.js';
import { DEFAULT_THRESHOLDS } from '../../src/ops/monitoring/thresholds.js';
import { run, tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { type Service, startSignalingProcess } from '../helpers/processes.js';
import { promAlerts, promQuery, startTestPrometheus } from '../helpers/prometheus.js';
import { makeCert } from '../helpers/tls.js';
import { waitFor, waitForValue } from '../helpers/wait.js';
import { type RunningWitness, startWitness } from '../helpers/witness.js';

// One mesh for the whole file: a signaling process, a witness, coturn, two direct agents and two
// relay-only agents, and Prometheus scraping it with the exported files. A second, spare signaling
// instance is the one killed, so no test depends on another having run first.
const { dir, cleanup } = tempDir();
let sig: Service;
let spare: Service;
const spareHost = () => new URL(spare.ready.http_url as string).host;
let witness: RunningWitness;
let turn: RunningTurnserver;
let prom: RunningPrometheus;
const agents: MeshAgent[] = [];
let exported: { metrics: string[]; tls_only_metrics: string[]; files: { scrape_config: string } };

function agent(id: string, mesh: string, relay: boolean): MeshAgent {
  const a = new MeshAgent({
    agentId: id,
    identity: generateKeyPair(),
    signalingUrls: [sig.url],
    iceServers: [
      { urls: turn.stunUrl },
      ...(relay ? [{ urls: turn.url, username: 'ifmesh', credential: 'test-pass' }] : []),
    ],
    iceTransportPolicy: relay ? 'relay' : 'all',
    loopbackOnly: true,
    mesh,
    statsIntervalMs: 300,
    memoryIntervalMs: 300,
  });
  agents.push(a);
  a.start();
  return a;
}

beforeAll(async () => {
  turn = await startCoturn();
  witness = await startWitness();
  sig = await startSignalingProcess();
  spare = await startSignalingProcess();
  const a1 = agent('direct-1', 'direct', false);
  const a2 = agent('direct-2', 'direct', false);
  const r1 = agent('relay-1', 'relay', true);
  const r2 = agent('relay-2', 'relay', true);
  await Promise.all([a1.waitForPeers(['direct-2'], 20_000), a2.waitForPeers(['direct-1'], 20_000)]);
  await Promise.all([r1.waitForPeers(['relay-2'], 30_000), r2.waitForPeers(['relay-1'], 30_000)]);
  const r = await run([
    'monitoring',
    'export',
    '--out',
    dir,
    '--signaling',
    `${sig.ready.http_url},${spare.ready.http_url}`,
    '--witness',
    witness.url,
    '--scrape-interval',
    '1s',
    '--witness-scrape-interval',
    '1s',
    '--for',
    '3s',
    // No Alertmanager here (monitoring-alertmanager.test.ts has one).
    '--alertmanager',
    '',
    '--json',
  ]);
  expect(r.code).toBe(0);
  exported = JSON.parse(r.stdout);
  prom = await startTestPrometheus(exported.files.scrape_config, dir);
}, 90_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await prom?.stop();
  await sig?.stop();
  await spare?.stop();
  await witness?.stop();
  await turn?.stop();
  cleanup();
});

describe('Prometheus against the live mesh, with the exported files', () => {
  it('names in the rules and panels are exactly ones the signaling server exposes', async () => {
    const res = await fetch(`${sig.ready.http_url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    const exposed = new Set(parseExposition(await res.text()).map((s) => s.name));
    // a metric renamed in code (or a typo in a rule or panel) fails here, not on a dashboard; the
    // certificate's expiry exists only on an instance serving TLS (checked below)
    expect(exported.tls_only_metrics).toEqual(['webrtc_tls_certificate_expiry_timestamp_seconds']);
    for (const m of exported.metrics.filter((x) => !exported.tls_only_metrics.includes(x)))
      expect(exposed, m).toContain(m);
    expect(exported.metrics).toEqual(
      expect.arrayContaining([
        'webrtc_connections_failed_total',
        'webrtc_rtt_milliseconds_bucket',
        'webrtc_cpu_seconds_total',
        'webrtc_memory_bytes',
      ]),
    );
  });

  it('scrapes every webrtc_* series the alert rules and panels use', async () => {
    for (const m of exported.metrics.filter((x) => !exported.tls_only_metrics.includes(x))) {
      await waitFor(async () => (await promQuery(prom.url, m)).length > 0, `Prometheus to have ${m}`, {
        timeoutMs: 30_000,
        intervalMs: 200,
      });
    }
    const targets = await waitForValue(
      async () => {
        const res = await fetch(`${prom.url}/api/v1/targets`, { signal: AbortSignal.timeout(5_000) });
        const t = ((await res.json()) as any).data.activeTargets as {
          labels: { job: string; instance: string };
          health: string;
        }[];
        const mesh = t.filter((x) => x.labels.instance !== spareHost());
        return mesh.length === 2 && mesh.every((x) => x.health === 'up') ? mesh : undefined;
      },
      'the mesh instance and the witness to be scraped',
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    expect(targets.map((t) => t.labels.job).sort()).toEqual(['if-witness', 'signaling-server']);
    // the relay pair is seen as relay, the direct pair as p2p
    const types = await promQuery(prom.url, 'sum by (connection_type) (webrtc_rtt_milliseconds_count)');
    expect(types.map((r) => r.metric.connection_type).sort()).toEqual(['p2p', 'relay']);
  }, 60_000);

  it('returns data for every expression of every Grafana panel', async () => {
    for (const p of PANELS) {
      for (const t of p.targets) {
        const result = await waitForValue(
          async () => {
            const r = await promQuery(prom.url, t.expr);
            return r.length > 0 && r.every((x) => Number.isFinite(Number(x.value[1]))) ? r : undefined;
          },
          `data for ${p.title} / ${t.legendFormat}`,
          { timeoutMs: 30_000, intervalMs: 200 },
        );
        expect(result.length, t.expr).toBeGreaterThan(0);
      }
    }
  }, 90_000);

  it('loads every rule, none firing about the healthy mesh', async () => {
    const res = await fetch(`${prom.url}/api/v1/rules`, { signal: AbortSignal.timeout(5_000) });
    const rules = ((await res.json()) as any).data.groups[0].rules as { name: string; health: string }[];
    expect(rules.map((r) => r.name)).toEqual(alertDefs(DEFAULT_THRESHOLDS).map((a) => a.name));
    expect(rules.every((r) => r.health === 'ok')).toBe(true);
    const firing = (await promAlerts(prom.url)).filter((a) => a.state === 'firing');
    expect(firing.filter((a) => a.labels.instance !== spareHost())).toEqual([]);
  });

  it('fires WebRTCSignalingServerDown within the shortened for: once the instance is killed', async () => {
    spare.kill('SIGKILL');
    await spare.exited;
    const pending = await waitForValue(
      async () =>
        (await promAlerts(prom.url)).find(
          (a) => a.labels.alertname === 'WebRTCSignalingServerDown' && a.labels.instance === spareHost(),
        ),
      'WebRTCSignalingServerDown pending or firing',
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    expect(['pending', 'firing']).toContain(pending.state);
    const firing = await waitForValue(
      async () =>
        (await promAlerts(prom.url)).find(
          (a) =>
            a.labels.alertname === 'WebRTCSignalingServerDown' &&
            a.labels.instance === spareHost() &&
            a.state === 'firing',
        ),
      'WebRTCSignalingServerDown firing',
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    expect(firing.labels).toMatchObject({
      severity: 'critical',
      job: 'signaling-server',
      instance: spareHost(),
    });
    // the instance the agents use is still up, and not alerted on
    const alerts = await promAlerts(prom.url);
    expect(alerts.filter((a) => a.labels.instance === new URL(sig.ready.http_url as string).host)).toEqual(
      [],
    );
  }, 40_000);
});

// The contract the certificate rules rely on. The signaling side exports it (a gauge beside the
// TLS listener, in src/ops/signaling/serve.ts or src/services/signaling/metrics.ts): until it does,
// this test fails, and the two certificate alerts could never fire on a live mesh.
describe('the certificate expiry the rules read, on an instance serving TLS', () => {
  it("exports the served certificate's notAfter as webrtc_tls_certificate_expiry_timestamp_seconds", async () => {
    const { dir: certDir, cleanup: certCleanup } = tempDir();
    const tls = makeCert(certDir, 'sig-expiry', 5);
    const secure = await startSignalingProcess(['--tls-cert', tls.cert, '--tls-key', tls.key]);
    try {
      const url = String(secure.ready.http_url);
      const text = await new Promise<string>((resolve, reject) => {
        // A self-signed certificate: read over node:https without verification, as Prometheus
        // would be told to with tls_config.insecure_skip_verify.
        get(`${url}/metrics`, { rejectUnauthorized: false }, (res) => {
          let body = '';
          res.on('data', (d) => {
            body += d;
          });
          res.on('end', () => resolve(body));
        }).on('error', reject);
      });
      const series = parseExposition(text).filter((x) => exported.tls_only_metrics.includes(x.name));
      const notAfter = Date.parse(new X509Certificate(readFileSync(tls.cert)).validTo) / 1000;
      expect(series.map((x) => [x.name, x.value])).toEqual([
        ['webrtc_tls_certificate_expiry_timestamp_seconds', notAfter],
      ]);
    } finally {
      await secure.stop();
      certCleanup();
    }
  });
});
