// A link the peer gives up on heals from the side that offers. When the agent with the larger id
// times out a link (its heartbeat gave up, e.g. right after it was frozen), it may not offer
// (CONTRACT: the smaller id offers on reconnect), so the smaller id must heal on that peer's bye.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import type { WitnessEvent } from '../../src/protocol/witness.js';
import { startCoturn } from '../helpers/coturn.js';
import { type RunningSignaling, startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';

let turn: RunningTurnserver;
let sig: RunningSignaling;
const agents: MeshAgent[] = [];
const events: WitnessEvent[] = [];
beforeAll(async () => {
  turn = await startCoturn();
  sig = await startSignaling();
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await sig.stop();
  await turn.stop();
});

function agent(id: string): MeshAgent {
  const a = new MeshAgent({
    agentId: id,
    identity: generateKeyPair(),
    signalingUrls: [sig.url],
    iceServers: [{ urls: turn.stunUrl }],
    loopbackOnly: true,
    healingBaseMs: 100,
    events: { log: (e) => events.push(e) },
  });
  agents.push(a);
  a.start();
  return a;
}

describe('healing a link the peer lost', () => {
  it('the smaller id offers again when the larger id drops the link on its heartbeat timeout', async () => {
    const a = agent('lost-a');
    const b = agent('lost-b');
    await a.waitForPeers(['lost-b'], 15_000);
    await b.waitForPeers(['lost-a'], 15_000);
    const first = a.links.get('lost-b');
    // What b's heartbeat does when it judges a silent: close with that reason (a bye on the channel).
    b.links.get('lost-a')!.close('heartbeat timeout');
    await waitFor(
      () => a.links.get('lost-b') !== first && Boolean(a.links.get('lost-b')?.ready),
      'a new ready channel from lost-a to lost-b',
      { timeoutMs: 20_000 },
    );
    expect(Number.isFinite(await a.links.get('lost-b')!.ping())).toBe(true);
    const fromA = events.filter((e) => e.agent_id === 'lost-a').map((e) => e.event);
    expect(fromA).toEqual(expect.arrayContaining(['mesh_healing_attempt', 'mesh_partition_healed']));
  }, 60_000);

  it('does not heal toward a peer that said goodbye', async () => {
    const c = agent('lost-c');
    const d = agent('lost-d');
    await c.waitForPeers(['lost-d'], 15_000);
    await d.stop();
    await waitFor(() => !c.links.has('lost-d'), 'the link to the stopped peer closed', { timeoutMs: 10_000 });
    const healing = events.filter((e) => e.agent_id === 'lost-c' && e.event === 'mesh_healing_attempt');
    expect(healing).toEqual([]);
  }, 60_000);
});
