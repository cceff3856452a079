import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import type { WitnessEvent } from '../../src/protocol/witness.js';
import { startCoturn } from '../helpers/coturn.js';
import { getJson, type RunningSignaling, startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';

let sig: RunningSignaling;
const turns: RunningTurnserver[] = [];
let agents: MeshAgent[] = [];
const events: WitnessEvent[] = [];

beforeAll(async () => {
  sig = await startSignaling();
});
afterEach(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  agents = [];
});
afterAll(async () => {
  await sig.stop();
  await Promise.all(turns.map((t) => t.stop()));
});

function relayAgent(id: string, servers: RunningTurnserver[]): MeshAgent {
  const a = new MeshAgent({
    agentId: id,
    identity: generateKeyPair(),
    signalingUrls: [sig.url],
    iceServers: [
      { urls: servers[servers.length - 1]!.stunUrl },
      ...servers.map((t) => ({ urls: t.url, username: 'ifmesh', credential: 'test-pass' })),
    ],
    iceTransportPolicy: 'relay',
    loopbackOnly: true,
    turnFallbackTimeoutMs: 4_000,
    events: { log: (e) => events.push(e) },
  });
  agents.push(a);
  a.start();
  return a;
}

describe('TURN through real coturn', () => {
  it('connects relay-only through coturn, and the selected pair is relay', async () => {
    const t1 = await startCoturn();
    turns.push(t1);
    const a = relayAgent('relay-1', [t1]);
    // The agent that registers later offers: relay-2 must register second.
    await waitFor(() => a.signalingUrl !== undefined, 'relay-1 to register');
    const b = relayAgent('relay-2', [t1]);
    await b.waitForPeers(['relay-1'], 20_000);
    await a.waitForPeers(['relay-2'], 20_000);
    const link = b.links.get('relay-1')!;
    expect(link.turnServer).toBe(t1.url);
    expect((await link.stats()).candidateType).toBe('relay');
    // ping() resolves only when the peer's signed pong came back over the relayed channel.
    expect(Number.isFinite(await link.ping())).toBe(true);
    expect(
      events
        .filter((e) => e.event === 'turn_connection_detected')
        .map((e) => (e.metadata as { turn_server: string }).turn_server),
    ).toContain(t1.url);
    await waitFor(
      async () =>
        (await getJson(`${sig.http}/connections`)).json.connections.some(
          (c: { agent_id: string; candidate_type: string }) =>
            c.agent_id === 'relay-2' && c.candidate_type === 'relay',
        ),
      "relay-2's report of a relay connection",
    );
  }, 60_000);

  it('falls back to relay-only through TURN when no direct path opens in time', async () => {
    const t1 = await startCoturn();
    turns.push(t1);
    // The offerer (fb-2, registering later) gathers no host candidates at all, so its direct
    // attempt cannot connect however the answerer's candidates look; only a relay can.
    const mk = (id: string, noHost: boolean) => {
      const a = new MeshAgent({
        agentId: id,
        identity: generateKeyPair(),
        signalingUrls: [sig.url],
        iceServers: [{ urls: t1.stunUrl }, { urls: t1.url, username: 'ifmesh', credential: 'test-pass' }],
        iceTransportPolicy: 'all',
        loopbackOnly: true,
        // Each attempt (the direct one, then the relay one) gets this long: room for a loaded machine,
        // where a relay attempt cut at 1.5 s failed and the pair was left without a usable link.
        turnFallbackTimeoutMs: 3_000,
        ...(noHost ? { peerConfig: { iceAdditionalHostAddresses: [] } } : {}),
        events: { log: (e) => events.push(e) },
      });
      agents.push(a);
      a.start();
      return a;
    };
    const a = mk('fb-1', false);
    await waitFor(() => a.signalingUrl !== undefined, 'fb-1 to register');
    const b = mk('fb-2', true);
    await b.waitForPeers(['fb-1'], 20_000);
    const link = b.links.get('fb-1')!;
    expect(link.turnServer).toBe(t1.url);
    expect((await link.stats()).candidateType).toBe('relay');
    // ping() resolves only when the peer's signed pong came back over the relayed channel.
    const trail = () =>
      events
        .filter((e) => String(e.agent_id).startsWith('fb-'))
        .map((e) => `${e.agent_id}:${e.event}`)
        .join(', ');
    expect(
      Number.isFinite(
        await link.ping().catch((e: Error) => Promise.reject(new Error(`${e.message}; events: ${trail()}`))),
      ),
    ).toBe(true);
    const mine = events.filter((e) => e.agent_id === 'fb-2' && e.peer_id === 'fb-1').map((e) => e.event);
    expect(mine).toEqual(
      expect.arrayContaining([
        'turn_fallback_initiated',
        'turn_fallback_successful',
        'turn_connection_detected',
      ]),
    );
    expect(mine.indexOf('turn_fallback_initiated')).toBeLessThan(mine.indexOf('turn_fallback_successful'));
  }, 60_000);

  it('connects through the second coturn when the first is killed', async () => {
    const [t1, t2] = [await startCoturn(), await startCoturn()];
    turns.push(t1, t2);
    await t1.stop();
    const a = relayAgent('fo-1', [t1, t2]);
    await waitFor(() => a.signalingUrl !== undefined, 'fo-1 to register');
    const b = relayAgent('fo-2', [t1, t2]);
    await b.waitForPeers(['fo-1'], 30_000);
    const link = b.links.get('fo-1')!;
    expect(link.turnServer).toBe(t2.url);
    expect((await link.stats()).candidateType).toBe('relay');
    // ping() resolves only when the peer's signed pong came back over the relayed channel.
    expect(Number.isFinite(await link.ping())).toBe(true);
  }, 60_000);
});
