// Trees 1, 2 and 3 on relay-only agents through a real coturn: the TURN Allocate probe, P2P blocked
// (relay policy) with TURN reachable or dead, high latency on the relay when one agent's path to
// coturn is slow (a UDP delay relay, test/helpers/udp-delay.ts) against the healthy reading of the
// same connection under the runbook's own limit, and packet loss on the relay when that path turns
// slow under a live link (pongs after the heartbeat timeout are lost pings).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { WitnessClient } from '../../src/clients/witness.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import type { EvidenceSources } from '../../src/ops/troubleshoot/evidence.js';
import { probeStun, probeTurnAllocate } from '../../src/ops/troubleshoot/probes.js';
import { troubleshoot } from '../../src/ops/troubleshoot/run.js';
import { systemClock } from '../../src/util/clock.js';
import { tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { freePort } from '../helpers/processes.js';
import { type RunningSignaling, SETTINGS, startSignaling } from '../helpers/signaling.js';
import { startUdpDelay, type UdpDelay } from '../helpers/udp-delay.js';
import { waitFor, waitForValue } from '../helpers/wait.js';
import { API_KEY, type RunningWitness, startWitness } from '../helpers/witness.js';

let turn: RunningTurnserver;
let witness: RunningWitness;
let sig: RunningSignaling;
let agents: MeshAgent[] = [];
let clients: WitnessClient[] = [];
let delays: UdpDelay[] = [];
let cleanups: (() => void)[] = [];

beforeAll(async () => {
  turn = await startCoturn();
  // startCoturn returns once coturn's TCP listener accepts; its UDP socket may bind a moment later,
  // and a probe sent before that is refused at once (ICMP port unreachable): wait for a STUN answer.
  await waitFor(
    async () => (await probeStun(turn.stunUrl, { timeoutMs: 500, clock: systemClock })).ok,
    'coturn to answer STUN over UDP',
  );
});
afterAll(async () => {
  await turn.stop();
});
afterEach(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(delays.map((d) => d.stop()));
  await sig?.stop();
  await witness?.stop();
  for (const c of cleanups) c();
  agents = [];
  clients = [];
  delays = [];
  cleanups = [];
});

async function stack(turnServers: string[]) {
  witness = await startWitness();
  sig = await startSignaling({ settings: { ...SETTINGS, stunServers: [turn.stunUrl], turnServers } });
}

function relayAgent(id: string, turnUrl: string, heartbeatTimeoutMs?: number): MeshAgent {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const events = new WitnessClient({ url: witness.url, apiKey: API_KEY, producer: id, spoolDir: dir });
  clients.push(events);
  const a = new MeshAgent({
    agentId: id,
    identity: generateKeyPair(),
    signalingUrls: [sig.url],
    iceServers: [{ urls: turn.stunUrl }, { urls: turnUrl, username: 'ifmesh', credential: 'test-pass' }],
    iceTransportPolicy: 'relay',
    loopbackOnly: true,
    turnFallbackTimeoutMs: 15_000,
    statsIntervalMs: 300,
    ...(heartbeatTimeoutMs ? { heartbeatTimeoutMs } : {}),
    events,
  });
  agents.push(a);
  a.start();
  return a;
}

function sources(o: Partial<EvidenceSources> = {}): EvidenceSources {
  return {
    signaling: [sig.http],
    witness: { url: witness.url },
    turn: { username: 'ifmesh', password: 'test-pass' },
    production: false,
    allowSelfSigned: false,
    clock: systemClock,
    ...o,
  };
}

const answers = (r: { walk: { path: { answer: string }[] } }) => r.walk.path.map((s) => s.answer);

describe('TURN Allocate probe', () => {
  it('allocates a relayed address from coturn, and reports wrong credentials and a dead port', async () => {
    const o = { timeoutMs: 2_000, clock: systemClock };
    const ok = await probeTurnAllocate(turn.url, { username: 'ifmesh', password: 'test-pass' }, o);
    expect(ok, JSON.stringify(ok)).toMatchObject({
      ok: true,
      relayed: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
    });
    const wrong = await probeTurnAllocate(turn.url, { username: 'ifmesh', password: 'nope' }, o);
    expect(wrong, JSON.stringify(wrong)).toMatchObject({ ok: false, error: expect.stringContaining('401') });
    const dead = await probeTurnAllocate(
      `turn:127.0.0.1:${await freePort()}?transport=udp`,
      {
        username: 'ifmesh',
        password: 'test-pass',
      },
      { timeoutMs: 500, clock: systemClock },
    );
    expect(dead.ok).toBe(false);
  });
});

describe('tree 1 on relay-only agents', () => {
  it('finds P2P blocked but TURN allocating; with /config naming a dead TURN port, TURN unavailable', async () => {
    const deadTurn = `turn:127.0.0.1:${await freePort()}?transport=udp`;
    await stack([turn.url]);
    const a = relayAgent('r-1', turn.url);
    await waitFor(() => a.signalingUrl !== undefined, 'r-1 to register');
    const b = relayAgent('r-2', turn.url);
    await b.waitForPeers(['r-1'], 30_000);
    await waitFor(
      async () =>
        (await troubleshoot('connection-timeout', { agent: 'r-2', peer: 'r-1' }, sources())).walk.path
          .length >= 4 && (await Promise.all(clients.map((c) => c.flush()))).every(Boolean),
      'the relayed pair to be reported',
    );
    const r = await troubleshoot('connection-timeout', { agent: 'r-2', peer: 'r-1' }, sources());
    expect(answers(r)).toEqual(['yes', 'yes', 'yes', 'no', 'yes', 'yes']);
    expect(r.walk.path[3]!.evidence.reports).toContainEqual(
      expect.objectContaining({ candidate_type: 'relay' }),
    );
    expect(r.walk.root_cause?.id).toBe('p2p_blocked');

    sig.server.core.settings.turnServers = [deadTurn];
    const dead = await troubleshoot('connection-timeout', { agent: 'r-2', peer: 'r-1' }, sources());
    expect(answers(dead)).toEqual(['yes', 'yes', 'yes', 'no', 'yes', 'no']);
    expect(dead.walk.root_cause?.id).toBe('turn_unavailable');
  }, 90_000);
});

describe('tree 2 on a slow relay path', () => {
  it('names high latency on the relay when one agent reaches coturn through a 150 ms each-way delay', async () => {
    await stack([turn.url]);
    const coturnPort = Number(new URL(turn.url.replace('turn:', 'http://')).port);
    const slow = await startUdpDelay({ host: '127.0.0.1', port: coturnPort }, 150);
    delays.push(slow);
    const a = relayAgent('lat-1', `turn:127.0.0.1:${slow.port}?transport=udp`);
    await waitFor(() => a.signalingUrl !== undefined, 'lat-1 to register');
    const b = relayAgent('lat-2', turn.url);
    await b.waitForPeers(['lat-1'], 60_000);
    // The relayed round trip is now >= 300 ms; the runbook's TURN limit (2000 ms) is lowered to 200 ms
    // so that the fault stays small enough for werift to connect through it at all.
    const limits = { rttTurnMs: 200 };
    const r = await waitForValue(
      async () => {
        const w = await troubleshoot('latency', { agent: 'lat-1' }, sources({ limits }));
        return w.walk.path[0]!.answer === 'yes' ? w : undefined;
      },
      'lat-1 to report its relayed RTT',
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(r.walk.path[0]!.evidence).toMatchObject({
      limit_ms: 200,
      worst: { candidate_type: 'relay', peer_id: 'lat-2' },
    });
    expect((r.walk.path[0]!.evidence.worst as { rtt_ms: number }).rtt_ms).toBeGreaterThan(200);
    // on the relay; coturn answers Allocate promptly (capacity low); no other pair is slow
    expect(answers(r).slice(0, 4)).toEqual(['yes', 'turn', 'low', 'no']);
    expect(['network_instability', 'consistent_high_latency']).toContain(r.walk.root_cause?.id);
    // with the runbook's own limit the same live connection is within bounds
    const runbook = await troubleshoot('latency', { agent: 'lat-1' }, sources());
    expect(answers(runbook)).toEqual(['no']);
    expect(runbook.walk.root_cause).toBeNull();
    // A mistyped id is not a healthy agent: nothing registered, nothing in the witness.
    await expect(troubleshoot('latency', { agent: 'lat-9' }, sources())).rejects.toThrow(
      'agent lat-9 is not registered on any signaling instance, and the witness has nothing from it in the last hour',
    );
  }, 120_000);
});

describe('tree 3 on a relay path that turns slow', () => {
  it('names loss on the relay when pongs come back after the heartbeat timeout', async () => {
    await stack([turn.url]);
    const coturnPort = Number(new URL(turn.url.replace('turn:', 'http://')).port);
    const path = await startUdpDelay({ host: '127.0.0.1', port: coturnPort }, 0);
    delays.push(path);
    // Heartbeat timeout 1 s (pings every ~333 ms). The pair connects over a fast path; then loss-1's
    // path to coturn grows to 600 ms each way: every pong now comes back after the timeout and its
    // ping is counted lost, while pings and pongs still arrive every ~333 ms, so the link stays up.
    // The link times out only if nothing arrives for 1 s: ~667 ms of margin for a stalled event loop
    // (this process runs both agents and the delay). At 250 ms a stall of ~170 ms timed the link out
    // on a loaded host, and the pair flapped without one link living long enough to count a loss.
    const a = relayAgent('loss-1', `turn:127.0.0.1:${path.port}?transport=udp`, 1_000);
    await waitFor(() => a.signalingUrl !== undefined, 'loss-1 to register');
    const b = relayAgent('loss-2', turn.url, 1_000);
    await b.waitForPeers(['loss-1'], 60_000);
    const healthy = await troubleshoot('packet-loss', { agent: 'loss-1' }, sources());
    expect(answers(healthy)).toEqual(['no']);
    expect(healthy.walk.root_cause).toBeNull();
    // The path turns slow gradually (50 ms more each way every 200 ms), as a queue building up does:
    // one 600 ms step would hold everything in flight for longer than the heartbeat's margin.
    for (let ms = 50; ms <= 600; ms += 50) {
      path.setDelay(ms);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const r = await waitForValue(
      async () => {
        const w = await troubleshoot('packet-loss', { agent: 'loss-1' }, sources());
        return w.walk.path[0]!.answer === 'yes' ? w : undefined;
      },
      'loss-1 to report lost pings',
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    expect(r.walk.path[0]!.evidence.worst_loss_ratio).toBeGreaterThan(0.05);
    expect(answers(r).slice(0, 3)).toEqual(['yes', 'turn', 'low']);
    expect(r.walk.root_cause?.id).toBe('relay_network_loss');
  }, 120_000);
});
