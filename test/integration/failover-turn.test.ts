// `ifmesh failover turn` (scenario A) against real coturn: two relay-only werift agents meet through
// coturn 1, which is then killed; the failover pushes TURN_SERVERS with coturn 2 in its place
// (/admin/reload-config), asks the relayed peers to reconnect (/admin/reconnect-turn-peers), and
// waits until the witness sees them on coturn 2, then validates the recovery. And the local stack's
// usual case: no agent relayed at all (direct on loopback), so there is nothing to move and the
// failover passes, saying so, with one verdict and rounded RTTs in its human output.
import { getGlobalDispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { WitnessClient } from '../../src/clients/witness.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { EXCHANGE_THRESHOLDS } from '../../src/ops/agent/exchange.js';
import { applyFailover, planTurnFailover } from '../../src/ops/failover/scenarios.js';
import { validateRecovery } from '../../src/ops/failover/validate.js';
import { statePaths } from '../../src/state/state-dir.js';
import { systemClock } from '../../src/util/clock.js';
import { systemExec } from '../../src/util/exec.js';
import { run, tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { ADMIN, getJson, type RunningSignaling, startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, post, type RunningWitness, startWitness } from '../helpers/witness.js';

let sig: RunningSignaling;
let witness: RunningWitness;
let dir: { dir: string; cleanup: () => void };
const turns: RunningTurnserver[] = [];
const agents: MeshAgent[] = [];
const clients: WitnessClient[] = [];

beforeAll(async () => {
  witness = await startWitness();
  sig = await startSignaling({ instanceId: 'sig-a' });
  dir = tempDir();
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all(clients.map((c) => c.close(2_000)));
  await sig?.stop();
  await witness?.stop();
  await Promise.all(turns.map((t) => t.stop()));
  dir?.cleanup();
});

function relayAgent(id: string, turn: RunningTurnserver): MeshAgent {
  const events = new WitnessClient({
    url: witness.url,
    apiKey: API_KEY,
    producer: id,
    spoolDir: statePaths(dir.dir).spool,
  });
  clients.push(events);
  const a = new MeshAgent({
    agentId: id,
    identity: generateKeyPair(),
    signalingUrls: [sig.url],
    iceServers: [{ urls: turn.url, username: 'ifmesh', credential: 'test-pass' }],
    iceTransportPolicy: 'relay',
    loopbackOnly: true,
    events,
  });
  agents.push(a);
  a.start();
  return a;
}

describe('failover turn (scenario A)', () => {
  it('moves relay-only peers off a killed coturn onto the replacement, confirmed by the witness', async () => {
    const t1 = await startCoturn();
    const t2 = await startCoturn();
    turns.push(t1, t2);
    const a = relayAgent('ta-1', t1);
    await waitFor(() => a.signalingUrl !== undefined, 'ta-1 to register');
    const b = relayAgent('ta-2', t1);
    await b.waitForPeers(['ta-1'], 20_000);
    expect(b.links.get('ta-1')!.turnServer).toBe(t1.url);
    await waitFor(
      async () =>
        (await getJson(`${sig.http}/connections`)).json.connections.some(
          (c: { candidate_type: string }) => c.candidate_type === 'relay',
        ),
      'a relay connection reported to signaling',
    );

    // The fault: coturn 1 dies.
    process.kill(t1.pid, 'SIGKILL');

    const env = {
      SIGNALING_ADMIN_TOKEN: ADMIN,
      IF_WITNESS_ENDPOINT: witness.url,
      IF_WITNESS_API_KEY: API_KEY,
      IFMESH_STATE_DIR: dir.dir,
    };
    const args = ['failover', 'turn', '--signaling', sig.url, '--failed', t1.url, '--replacement', t2.url];
    const dry = await run([...args, '--id', 'fo-a-dry', '--dry-run', '--json'], { cwd: dir.dir, env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout).plan.turn).toMatchObject({ failed: t1.url, replacement: t2.url });
    expect(sig.events.filter((e) => e.event === 'turn_servers_reloaded')).toEqual([]);

    const r = await run(
      [...args, '--id', 'fo-a-1', '--loopback', '--messages', '5', '--timeout', '60s', '--json'],
      {
        cwd: dir.dir,
        env,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    // One end of the relayed pair reconnects (both at once would offer to each other).
    expect(doc.report.turn.reconnected).toHaveLength(1);
    const [mover] = doc.report.turn.reconnected as string[];
    expect(['ta-1', 'ta-2']).toContain(mover);
    expect(doc.report.turn.on_replacement).toContain(mover);
    expect(doc.validation.passed, JSON.stringify(doc.validation.checks)).toBe(true);
    // The pair really relays through coturn 2 now, and a signed ping crosses it.
    const [agent, peer] = mover === 'ta-1' ? [a, 'ta-2'] : [b, 'ta-1'];
    await waitFor(() => agent.links.get(peer)?.turnServer === t2.url, `${mover} relayed through coturn 2`);
    expect((await agent.links.get(peer)!.stats()).candidateType).toBe('relay');
    expect(Number.isFinite(await agent.links.get(peer)!.ping())).toBe(true);
    const q = async (query: Record<string, unknown>) =>
      (await post(`${witness.url}/api/query`, { query })).json.results as Record<string, any>[];
    expect((await q({ failover_id: 'fo-a-1' })).map((e) => e.event)).toEqual(
      expect.arrayContaining([
        'failover_initiated',
        'turn_server_failover',
        'turn_server_failover_complete',
        'failover_recovery_validated',
      ]),
    );
    expect(await q({ event: 'turn_connection_detected', 'metadata.turn_server': t2.url })).not.toEqual([]);
  }, 120_000);
});

describe('failover turn (scenario A) with no agent relayed', () => {
  // A signaling instance of its own: the relayed pair above never shows up here.
  let sig2: RunningSignaling;
  let dir2: { dir: string; cleanup: () => void };
  const ctx = {
    clock: systemClock,
    signal: new AbortController().signal,
    dispatcher: getGlobalDispatcher(),
    exec: systemExec,
  };
  beforeAll(async () => {
    sig2 = await startSignaling({ instanceId: 'sig-a2' });
    dir2 = tempDir();
  });
  afterAll(async () => {
    await sig2?.stop();
    dir2?.cleanup();
  });
  const witnessTarget = () => ({ url: witness.url, apiKey: API_KEY, stateDir: dir2.dir });

  it('passes at once: the report says nothing had to move, and the witness has the completion', async () => {
    const plan = planTurnFailover({
      failoverId: 'fo-a-none',
      signaling: [sig2.url],
      turnServers: ['turn:127.0.0.1:3478'],
      failed: 'turn:127.0.0.1:3478',
      replacement: 'turn:127.0.0.1:3479',
    });
    const started = Date.now();
    // A short timeout: the bug waited all of it for a peer that could never come, then failed.
    const report = await applyFailover(
      plan,
      { stateDir: dir2.dir, adminToken: ADMIN, witness: witnessTarget(), timeoutMs: 3_000 },
      ctx,
    );
    expect(report.ok, JSON.stringify(report.steps)).toBe(true);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(report.turn).toEqual({ pushed: 0, reconnected: [], on_replacement: [], nothing_to_move: true });
    expect(report.steps.at(-1)).toEqual({
      step: 'peers on the replacement',
      ok: true,
      detail: 'no agent was relayed through turn:127.0.0.1:3478: nothing to move',
    });
    const done = (await post(`${witness.url}/api/query`, { query: { failover_id: 'fo-a-none' } })).json
      .results as Record<string, any>[];
    expect(done.find((e) => e.event === 'turn_server_failover_complete')?.metadata).toMatchObject({
      agents: [],
      nothing_to_move: true,
    });
    expect(done.find((e) => e.event === 'failover_completed')?.metadata).toMatchObject({ ok: true });
  });

  it('validation details round RTTs for people; the data keeps full precision', async () => {
    const rtt = { p50: 3.2058670000114944, p95: 4.987654321, max: 5.0001 };
    const v = await validateRecovery(
      {
        failoverId: 'fo-a-rtt',
        scenario: 'A',
        signalingHttp: [sig2.http],
        witness: witnessTarget(),
        exchange: async () => ({
          ok: true,
          agents: 2,
          pairs: 1,
          pings_sent: 5,
          pongs_received: 5,
          delivery_ratio: 1,
          rtt_ms: rtt,
          signature_failures: 0,
          messages_per_second: 123.456,
          mesh_formed_ms: 812,
          thresholds: EXCHANGE_THRESHOLDS,
          failures: [],
        }),
      },
      ctx,
    );
    const latency = v.checks.find((k) => k.name === 'latency')!;
    expect(latency).toMatchObject({ passed: true, data: { rtt_ms: rtt } });
    expect(latency.detail).toBe('RTT p50 3.2 ms, p95 5 ms (at most 100 ms)');
  });

  it('exits 0 through the CLI with direct agents, one success verdict and rounded RTTs', async () => {
    const t1 = await startCoturn();
    const t2 = await startCoturn();
    turns.push(t1, t2);
    const direct = ['td-1', 'td-2'].map((id) => {
      const a = new MeshAgent({
        agentId: id,
        identity: generateKeyPair(),
        signalingUrls: [sig2.url],
        iceServers: [],
        loopbackOnly: true,
      });
      agents.push(a);
      a.start();
      return a;
    });
    await direct[0]!.waitForPeers(['td-2'], 20_000);
    await waitFor(async () => {
      const cs = (await getJson(`${sig2.http}/connections`)).json.connections as {
        state: string;
        candidate_type: string;
      }[];
      return cs.length > 0 && cs.every((c) => c.state === 'connected' && c.candidate_type !== 'relay');
    }, 'direct connections reported to signaling');
    const r = await run(
      [
        'failover',
        'turn',
        '--signaling',
        sig2.url,
        '--failed',
        t1.url,
        '--replacement',
        t2.url,
        '--id',
        'fo-a-direct',
        '--loopback',
        '--messages',
        '5',
        '--timeout',
        '5s',
      ],
      {
        cwd: dir2.dir,
        env: {
          SIGNALING_ADMIN_TOKEN: ADMIN,
          IF_WITNESS_ENDPOINT: witness.url,
          IF_WITNESS_API_KEY: API_KEY,
          IFMESH_STATE_DIR: dir2.dir,
        },
      },
    );
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain(`no agent was relayed through ${t1.url}: nothing to move`);
    expect(r.stdout).not.toMatch(/FAILED|NOT validated|✗/);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe(
      '✅ failover fo-a-direct (scenario A) applied, recovery validated',
    );
    expect(r.stdout).toMatch(/RTT p50 \d+(\.\d)? ms, p95 \d+(\.\d)? ms \(at most 100 ms\)/);
  }, 90_000);
});
