// Two agents that offer to each other at the same moment (glare) must still end up with one working
// channel: the smaller id keeps its offer, the other answers it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { startCoturn } from '../helpers/coturn.js';
import { type RunningSignaling, startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';

let turn: RunningTurnserver;
let sig: RunningSignaling;
const agents: MeshAgent[] = [];
beforeAll(async () => {
  turn = await startCoturn();
  sig = await startSignaling();
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await sig.stop();
  await turn.stop();
});

describe('offer glare', () => {
  it('connects when both agents offer to each other at once', async () => {
    for (const id of ['glare-a', 'glare-b']) {
      const a = new MeshAgent({
        agentId: id,
        identity: generateKeyPair(),
        signalingUrls: [sig.url],
        iceServers: [{ urls: turn.stunUrl }],
        loopbackOnly: true,
      });
      agents.push(a);
      a.start();
    }
    const [a, b] = agents as [MeshAgent, MeshAgent];
    await a.waitForPeers(['glare-b'], 15_000);
    await b.waitForPeers(['glare-a'], 15_000);
    const first = a.links.get('glare-b');
    // Both renegotiate at once, as after a partition seen by both sides.
    const connect = (x: MeshAgent, peer: string) =>
      (x as unknown as { connectTo(p: string): Promise<void> }).connectTo(peer);
    void connect(a, 'glare-b');
    void connect(b, 'glare-a');
    await waitFor(
      () =>
        a.links.get('glare-b') !== first &&
        Boolean(a.links.get('glare-b')?.ready) &&
        Boolean(b.links.get('glare-a')?.ready),
      'a new channel ready on both sides',
      { timeoutMs: 20_000 },
    );
    expect(Number.isFinite(await a.links.get('glare-b')!.ping())).toBe(true);
    expect(Number.isFinite(await b.links.get('glare-a')!.ping())).toBe(true);
  }, 60_000);
});
