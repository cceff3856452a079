import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { createSigner, generateKeyPair } from '../../src/crypto/ed25519.js';
import { buildMessage, signMessage } from '../../src/crypto/ifmessage.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import type { WitnessEvent } from '../../src/protocol/witness.js';
import { startCoturn } from '../helpers/coturn.js';
import { getJson, type RunningSignaling, startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';

// coturn (for STUN) and signaling are shared; each test forms its own mesh of its own agents
// (its own ids and mesh name), so no test depends on another's agents or on their order.
let turn: RunningTurnserver;
let sig: RunningSignaling;
let agents: MeshAgent[] = [];

beforeAll(async () => {
  turn = await startCoturn();
  sig = await startSignaling();
});
afterEach(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  agents = [];
});
afterAll(async () => {
  await sig?.stop();
  await turn?.stop();
});

/** `n` agents named `<name>-1…n` in a mesh of their own, fully connected. */
async function fullMesh(name: string, n: number, events: WitnessEvent[]): Promise<MeshAgent[]> {
  const ids = Array.from({ length: n }, (_, i) => `${name}-${i + 1}`);
  const made = ids.map(
    (id) =>
      new MeshAgent({
        agentId: id,
        identity: generateKeyPair(),
        signalingUrls: [sig.url],
        iceServers: [{ urls: turn.stunUrl }],
        loopbackOnly: true,
        mesh: name,
        statsIntervalMs: 200,
        events: { log: (e) => events.push(e) },
      }),
  );
  agents.push(...made);
  for (const a of made) a.start();
  await Promise.all(
    made.map((a) =>
      a.waitForPeers(
        ids.filter((p) => p !== a.id),
        15_000,
      ),
    ),
  );
  return made;
}

describe('werift agents', () => {
  it('form a full mesh and exchange signed pings over every pair', async () => {
    const events: WitnessEvent[] = [];
    const mesh = await fullMesh('full', 3, events);
    const ids = mesh.map((a) => a.id);
    for (const a of mesh) {
      for (const peer of ids.filter((p) => p !== a.id)) {
        // ping() resolves only when the peer's signed pong came back over the channel.
        expect(Number.isFinite(await a.links.get(peer)!.ping())).toBe(true);
      }
    }
    // every agent reports its side of every connection as connected
    const connected = async () =>
      (await getJson(`${sig.http}/connections`)).json.connections.filter(
        (c: { state: string; agent_id: string }) => c.state === 'connected' && ids.includes(c.agent_id),
      );
    await waitFor(async () => (await connected()).length === 6, 'six connected reports');
    expect((await connected()).every((c: { candidate_type: string }) => c.candidate_type === 'host')).toBe(
      true,
    );
    expect(events.filter((e) => e.event === 'p2p_connection_established').length).toBeGreaterThanOrEqual(6);
    await waitFor(() => events.some((e) => e.event === 'connection_quality_update'), 'a quality report');
  });

  it('drops and reports a message signed by another key, and keeps the channel', async () => {
    const events: WitnessEvent[] = [];
    const [a, b] = await fullMesh('forged', 2, events);
    const link = a!.links.get(b!.id)!;
    const mallory = createSigner(generateKeyPair().seed);
    const forged = signMessage(buildMessage({ from: a!.id, to: b!.id, type: 'ping' }, Date.now()), mallory);
    link.dc!.send(JSON.stringify(forged));
    await waitFor(() => b!.counters.signature_failures > 0, 'the forged message to be refused');
    expect(b!.counters.signature_failures).toBe(1);
    const reported = events.find((e) => e.event === 'signature_verification_failed');
    expect(reported).toMatchObject({
      agent_id: b!.id,
      peer_id: a!.id,
      metadata: { reason: 'bad_signature' },
    });
    expect(Number.isFinite(await link.ping())).toBe(true);
  });

  it("closes the peer's side when an agent says goodbye", async () => {
    const [a, , c] = await fullMesh('bye', 3, []);
    await c!.stop();
    // Without the bye, a silent peer is noticed only by the 30 s heartbeat (or ICE consent
    // expiry, tens of seconds): the link going within this bound is the bye's doing.
    await waitFor(() => a!.links.get(c!.id) === undefined, "the departed agent's link to close", {
      timeoutMs: 10_000,
    });
  });
});
