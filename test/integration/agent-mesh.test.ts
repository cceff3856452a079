import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { createSigner, generateKeyPair } from '../../src/crypto/ed25519.js';
import { buildMessage, signMessage } from '../../src/crypto/ifmessage.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import type { WitnessEvent } from '../../src/protocol/witness.js';
import { startCoturn } from '../helpers/coturn.js';
import { getJson, type RunningSignaling, startSignaling } from '../helpers/signaling.js';

let turn: RunningTurnserver;
let sig: RunningSignaling;
const agents: MeshAgent[] = [];
const events: WitnessEvent[] = [];

function agent(id: string): MeshAgent {
  const a = new MeshAgent({
    agentId: id,
    identity: generateKeyPair(),
    signalingUrls: [sig.url],
    iceServers: [{ urls: turn.stunUrl }],
    loopbackOnly: true,
    statsIntervalMs: 200,
    events: { log: (e) => events.push(e) },
  });
  agents.push(a);
  a.start();
  return a;
}

beforeAll(async () => {
  turn = await startCoturn();
  sig = await startSignaling();
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await sig.stop();
  await turn.stop();
});

describe('werift agents', () => {
  it('form a full mesh and exchange signed pings over every pair', async () => {
    const ids = ['agent-1', 'agent-2', 'agent-3'];
    const [a1, a2, a3] = ids.map((id) => agent(id));
    await Promise.all(
      [a1, a2, a3].map((a, i) =>
        a!.waitForPeers(
          ids.filter((_, j) => j !== i),
          15_000,
        ),
      ),
    );
    for (const a of [a1, a2, a3]) {
      for (const peer of ids.filter((p) => p !== a!.id)) {
        const rtt = await a!.links.get(peer)!.ping();
        expect(rtt).toBeGreaterThanOrEqual(0);
        expect(rtt).toBeLessThan(1000);
      }
    }
    // every agent reported its side of every connection as connected
    await new Promise((r) => setTimeout(r, 500));
    const conns = (await getJson(`${sig.http}/connections`)).json.connections.filter(
      (c: { state: string }) => c.state === 'connected',
    );
    expect(conns.length).toBe(6);
    expect(conns.every((c: { candidate_type: string }) => c.candidate_type === 'host')).toBe(true);
    expect(events.filter((e) => e.event === 'p2p_connection_established').length).toBeGreaterThanOrEqual(6);
    expect(events.some((e) => e.event === 'connection_quality_update')).toBe(true);
  });

  it('drops and reports a message signed by another key, and keeps the channel', async () => {
    const a1 = agents[0]!;
    const link = a1.links.get('agent-2')!;
    const mallory = createSigner(generateKeyPair().seed);
    const forged = signMessage(
      buildMessage({ from: 'agent-1', to: 'agent-2', type: 'ping' }, Date.now()),
      mallory,
    );
    link.dc!.send(JSON.stringify(forged));
    await new Promise((r) => setTimeout(r, 200));
    const b = agents[1]!;
    expect(b.counters.signature_failures).toBe(1);
    const reported = events.find((e) => e.event === 'signature_verification_failed');
    expect(reported).toMatchObject({
      agent_id: 'agent-2',
      peer_id: 'agent-1',
      metadata: { reason: 'bad_signature' },
    });
    expect(await link.ping()).toBeLessThan(1000);
  });

  it("closes the peer's side at once when an agent says goodbye", async () => {
    const a3 = agents[2]!;
    const t0 = Date.now();
    await a3.stop();
    const a1 = agents[0]!;
    while (a1.links.get('agent-3') && Date.now() - t0 < 2_000) await new Promise((r) => setTimeout(r, 20));
    expect(a1.links.get('agent-3')).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(2_000);
  });
});
