import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { WitnessClient } from '../../src/clients/witness.js';
import { createSigner, generateKeyPair } from '../../src/crypto/ed25519.js';
import { buildMessage, signMessage } from '../../src/crypto/ifmessage.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import type { CheckReport } from '../../src/ops/monitoring/check.js';
import type { TopView } from '../../src/ops/monitoring/monitor.js';
import { run, tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { freePort, type Service, startService } from '../helpers/processes.js';
import { getJson, type RunningSignaling, startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, type RunningWitness, startWitness } from '../helpers/witness.js';

// Each test brings up its own signaling, witness and agents and induces one condition for real:
// a relay-only pair through coturn, an agent process killed, a peer signing with the wrong key.
let turn: RunningTurnserver;
let sig: RunningSignaling;
let witness: RunningWitness;
let agents: MeshAgent[] = [];
let clients: WitnessClient[] = [];
let procs: Service[] = [];
let cleanups: (() => void)[] = [];

beforeAll(async () => {
  turn = await startCoturn();
});
afterAll(async () => {
  await turn.stop();
});
afterEach(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all(procs.map((p) => p.stop()));
  await Promise.all(clients.map((c) => c.close()));
  await sig?.stop();
  await witness?.stop();
  for (const c of cleanups) c();
  agents = [];
  clients = [];
  procs = [];
  cleanups = [];
});

async function stack() {
  sig = await startSignaling();
  witness = await startWitness();
}

function agent(id: string, o: { relay?: boolean; mesh?: string; heal?: boolean } = {}): MeshAgent {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const events = new WitnessClient({ url: witness.url, apiKey: API_KEY, producer: id, spoolDir: dir });
  clients.push(events);
  const a = new MeshAgent({
    agentId: id,
    identity: generateKeyPair(),
    signalingUrls: [sig.url],
    iceServers: [
      { urls: turn.stunUrl },
      ...(o.relay ? [{ urls: turn.url, username: 'ifmesh', credential: 'test-pass' }] : []),
    ],
    iceTransportPolicy: o.relay ? 'relay' : 'all',
    loopbackOnly: true,
    mesh: o.mesh,
    statsIntervalMs: 300,
    memoryIntervalMs: 300,
    // a silent peer is noticed in 1.5 s and given up on after two reconnection attempts
    ...(o.heal ? { heartbeatTimeoutMs: 1_500, healingBaseMs: 100, healingAttempts: 2 } : {}),
    events,
  });
  agents.push(a);
  a.start();
  return a;
}

const flags = () => ['--signaling', sig.http, '--witness', witness.url, '--json'];

async function check(): Promise<{ code: number; report: CheckReport }> {
  const r = await run(['monitoring', 'check', '--sample-ms', '400', ...flags()]);
  return { code: r.code, report: JSON.parse(r.stdout) };
}

async function top(): Promise<TopView> {
  const r = await run(['top', '--interval', '300', ...flags()]);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

const rowOf = (r: CheckReport, id: string) => r.rows.find((x) => x.id === id)!;

describe('ifmesh monitoring check and ifmesh top on a live mesh', () => {
  it('show a relay-only connection through coturn as relay', async () => {
    await stack();
    const [r1, r2] = [
      agent('relay-1', { relay: true, mesh: 'r' }),
      agent('relay-2', { relay: true, mesh: 'r' }),
    ];
    const [d1, d2] = [agent('direct-1', { mesh: 'd' }), agent('direct-2', { mesh: 'd' })];
    await Promise.all([r1.waitForPeers(['relay-2'], 30_000), r2.waitForPeers(['relay-1'], 30_000)]);
    await Promise.all([d1.waitForPeers(['direct-2'], 20_000), d2.waitForPeers(['direct-1'], 20_000)]);
    await waitFor(
      async () => {
        const c = (await getJson(`${sig.http}/connections`)).json.connections as { state: string }[];
        return c.filter((x) => x.state === 'connected').length === 4;
      },
      'four connected reports',
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    const { code, report } = await check();
    // half the connections relayed: below the runbook's 80 % P2P rate, above its 20 % TURN rate
    expect(code).toBe(1);
    const p2p = rowOf(report, 'p2p_connection_rate');
    expect(p2p).toMatchObject({ status: 'alert', value: 0.5 });
    expect(p2p.detail).toMatch(/relay: relay-\d→relay-\d, relay-\d→relay-\d/);
    expect(rowOf(report, 'turn_fallback_rate')).toMatchObject({ status: 'alert', value: 0.5 });
    expect(rowOf(report, 'rtt_turn_p50').value).toBeGreaterThan(0);
    const view = await top();
    const relayed = view.connections.filter((c) => c.candidate_type === 'relay');
    expect(relayed.map((c) => `${c.agent_id}→${c.peer_id}`).sort()).toEqual([
      'relay-1→relay-2',
      'relay-2→relay-1',
    ]);
    expect(relayed.every((c) => c.state === 'connected')).toBe(true);
    expect(
      view.connections.filter((c) => c.agent_id.startsWith('direct')).map((c) => c.candidate_type),
    ).toEqual(['host', 'host']);
    expect(view.turn).toMatchObject({ relay_connections: 2, connected: 4 });
    // the plain snapshot (no terminal) says the same in its lines
    const plain = await run(['top', '--interval', '300', '--signaling', sig.http, '--witness', witness.url]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^relay-1 → relay-2 +connected +relay +\d/m);
    expect(plain.stdout).toMatch(/^direct-1 → direct-2 +connected +host +\d/m);
    expect(plain.stdout).toContain('TURN 2 of 4 connected via relay');
  }, 90_000);

  it('show the connection to a killed agent as failed', async () => {
    await stack();
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    await run(['keys', 'generate', '--agent', 'victim', '--out', dir]);
    const survivor = agent('survivor', { heal: true });
    const victim = await startService(
      [
        'agent',
        'run',
        '--id',
        'victim',
        '--key',
        path.join(dir, 'victim.key'),
        '--signaling',
        sig.url,
        '--stun',
        turn.stunUrl,
        '--loopback',
      ],
      { IFMESH_STATE_DIR: path.join(dir, 'state') },
    );
    procs.push(victim);
    await survivor.waitForPeers(['victim'], 20_000);
    // heartbeat pings answered: the connection's loss is measured, and nil
    await waitFor(
      async () =>
        (await getJson(`${sig.http}/connections`)).json.connections.some(
          (c: { agent_id: string; loss_ratio: number | null }) =>
            c.agent_id === 'survivor' && c.loss_ratio === 0,
        ),
      "a loss ratio in the survivor's report",
    );
    const live = await top();
    expect(live.connections).toContainEqual(
      expect.objectContaining({ agent_id: 'survivor', peer_id: 'victim', state: 'connected', loss_ratio: 0 }),
    );
    const before = await check();
    expect(rowOf(before.report, 'failed_connections')).toMatchObject({ status: 'ok', value: 0 });
    victim.kill('SIGKILL');
    await victim.exited;
    await waitFor(
      async () => {
        const c = (await getJson(`${sig.http}/connections`)).json.connections as { state: string }[];
        return c.some((x) => x.state === 'failed');
      },
      'the survivor to report the connection failed',
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    await Promise.all(clients.map((c) => c.flush()));
    const { code, report } = await check();
    expect(code).toBe(1);
    expect(rowOf(report, 'failed_connections')).toMatchObject({
      status: 'alert',
      value: 1,
      detail: 'survivor→victim',
    });
    expect(rowOf(report, 'witness_healing_failed')).toMatchObject({ status: 'alert', value: 1 });
    const view = await top();
    expect(view.connections).toContainEqual(
      expect.objectContaining({ agent_id: 'survivor', peer_id: 'victim', state: 'failed' }),
    );
    expect(view.alerts.map((a) => a.id)).toContain('failed_connections');
  }, 90_000);

  it("show a wrong-key agent's messages as a breached signature threshold", async () => {
    await stack();
    const [a, b] = [agent('honest'), agent('receiver')];
    await Promise.all([a.waitForPeers(['receiver'], 20_000), b.waitForPeers(['honest'], 20_000)]);
    // healthy first: every row within its threshold or not measurable, exit 0
    const healthy = await check();
    expect(healthy.report.rows.filter((r) => r.status === 'alert')).toEqual([]);
    expect(healthy.code).toBe(0);
    expect(rowOf(healthy.report, 'signature_failures')).toMatchObject({ status: 'ok', value: 0 });
    // the peer now signs with a key that is not the one it registered
    const mallory = createSigner(generateKeyPair().seed);
    const forged = signMessage(
      buildMessage({ from: 'honest', to: 'receiver', type: 'ping' }, Date.now()),
      mallory,
    );
    a.links.get('receiver')!.dc!.send(JSON.stringify(forged));
    await waitFor(() => b.counters.signature_failures === 1, 'the receiver to count the forgery');
    await waitFor(
      async () => {
        const m = (await getJson(`${sig.http}/metrics`)).text.match(
          /^webrtc_signature_verification_failures_total (\d+)/m,
        );
        return m?.[1] === '1';
      },
      "signaling to have the receiver's report",
      // Reports go every 300 ms; a fresh clone's suite beside stress-ng once took more than 10 s.
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    await Promise.all(clients.map((c) => c.flush()));
    const { code, report } = await check();
    expect(code).toBe(1);
    expect(rowOf(report, 'signature_failures')).toMatchObject({ status: 'alert', value: 1, threshold: '0' });
    expect(rowOf(report, 'witness_signature_failures')).toMatchObject({ status: 'alert', value: 1 });
    const view = await top();
    expect(view.alerts.map((x) => x.id)).toEqual(
      expect.arrayContaining(['signature_failures', 'witness_signature_failures']),
    );
    // human output: one line per metric, the breached one marked ALERT
    const human = await run([
      'monitoring',
      'check',
      '--sample-ms',
      '0',
      '--signaling',
      sig.http,
      '--witness',
      witness.url,
    ]);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^ALERT Message signature verification failures +1 +threshold 0/m);
  }, 90_000);

  it("reads the signaling certificate's expiry, alerting below the days threshold", async () => {
    await stack();
    const tls = [
      '--set',
      'SIGNALING_TLS_CERT=fixtures/tls/test-cert.pem',
      '--set',
      'SIGNALING_TLS_KEY=fixtures/tls/test-key.pem',
    ];
    const ok = await run(['monitoring', 'check', '--sample-ms', '0', ...tls, ...flags()]);
    const row = rowOf(JSON.parse(ok.stdout), 'certificate_days');
    expect(row).toMatchObject({ status: 'ok', threshold: '>= 7' });
    expect(row.detail).toMatch(/fixtures\/tls\/test-cert\.pem$/);
    // the fixture is valid until 2036
    expect(row.value).toBeGreaterThan(365);
    const soon = await run([
      'monitoring',
      'check',
      '--sample-ms',
      '0',
      '--threshold',
      `certificate_days=${Math.ceil(row.value! + 30)}`,
      ...tls,
      ...flags(),
    ]);
    expect(soon.code).toBe(1);
    expect(rowOf(JSON.parse(soon.stdout), 'certificate_days').status).toBe('alert');
    // without a certificate configured the row says so instead of passing
    const none = await check();
    expect(rowOf(none.report, 'certificate_days')).toMatchObject({
      status: 'n/a',
      detail: 'no SIGNALING_TLS_CERT configured',
    });
  });

  it('exits 3 naming the instance when no signaling answers', async () => {
    // A port taken and closed again: nothing answers there, whatever else runs on this machine.
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = await run(['monitoring', 'check', '--signaling', dead, '--sample-ms', '0']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`no signaling instance answers: ${dead}`);
  });
});
