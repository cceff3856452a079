// Issue 21, point 1 (agents): peers pin the first key they see for an id. A changed key announced by
// signaling (a squatter, a forged announcement from a compromised server or cluster store) is refused
// unless it comes with a rotation signed by the pinned key. Real werift agents on a real signaling
// server on loopback; the forged announcements are injected into that server's sockets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { createSigner, generateKeyPair, toBase64url } from '../../src/crypto/ed25519.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { rotationStatement } from '../../src/protocol/signaling.js';
import type { WitnessEvent } from '../../src/protocol/witness.js';
import { startCoturn } from '../helpers/coturn.js';
import { ADMIN, getJson, postJson, type RunningSignaling, startSignaling } from '../helpers/signaling.js';
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

function agent(id: string, identity = generateKeyPair()): MeshAgent {
  const a = new MeshAgent({
    agentId: id,
    identity,
    signalingUrls: [sig.url],
    iceServers: [{ urls: turn.stunUrl }],
    loopbackOnly: true,
    backoffBaseMs: 50,
    backoffMaxMs: 200,
    events: { log: (e) => events.push(e) },
  });
  agents.push(a);
  a.start();
  return a;
}

const b64 = (k: Uint8Array) => toBase64url(k);
/** What signaling tells every agent of the default mesh: the way a compromised server (or store) would lie. */
const announce = (frame: Record<string, unknown>) => sig.server.core.broadcast(frame, undefined, 'default');

describe('agents pin peer keys (issue 21.1)', () => {
  it('refuses a changed key without a rotation from the pinned one, follows a real rotation, and never links to a squatter', async () => {
    const a1 = agent('pin-1');
    const a2 = agent('pin-2');
    await a1.waitForPeers(['pin-2'], 15_000);
    await a2.waitForPeers(['pin-1'], 15_000);
    const real = b64(a2.publicKey);

    // 1. A bare announcement of another key for pin-2.
    const attacker = generateKeyPair();
    announce({ type: 'agent-joined', agent_id: 'pin-2', public_key: b64(attacker.publicKey), rekeyed: true });
    await waitFor(() => a1.counters.peer_key_mismatches === 1, 'pin-1 to refuse the unproven key');
    expect(b64(a1.keys.get('pin-2')!)).toBe(real);
    expect(b64(a1.links.get('pin-2')!.publicKey)).toBe(real);
    expect(events.find((e) => e.event === 'peer_key_mismatch' && e.agent_id === 'pin-1')).toMatchObject({
      peer_id: 'pin-2',
      severity: 'warning',
      metadata: { reason: 'unproven_key_change' },
    });
    // 2. With a "rotation" the pinned key never signed.
    const forged = {
      previous_key: real,
      public_key: b64(attacker.publicKey),
      signature: b64(createSigner(attacker.seed).sign(rotationStatement('pin-2', b64(attacker.publicKey)))),
    };
    announce({ type: 'agent-joined', agent_id: 'pin-2', public_key: forged.public_key, rotations: [forged] });
    await waitFor(() => a1.counters.peer_key_mismatches === 2, 'pin-1 to refuse the forged rotation');
    // The real peer still talks to pin-1 under its real key.
    expect(Number.isFinite(await a1.links.get('pin-2')!.ping())).toBe(true);

    // 3. A real rotation (signed by the pinned key) is followed.
    const started = await postJson(`${sig.http}/admin/rotate-keys`, { rotation_reason: 'test' }, ADMIN);
    expect(started.status).toBe(200);
    await waitFor(
      async () => (await getJson(`${sig.http}/admin/key-rotation-status`)).json.status === 'completed',
      'the rotation to complete',
    );
    await waitFor(
      () => b64(a1.keys.get('pin-2')!) === b64(a2.publicKey),
      "pin-1 to take pin-2's rotated key",
    );
    expect(b64(a2.publicKey)).not.toBe(real);
    expect(a1.counters.peer_key_mismatches).toBe(2);
    expect(events.some((e) => e.event === 'peer_key_rotated' && e.agent_id === 'pin-1')).toBe(true);
    expect(Number.isFinite(await a2.links.get('pin-1')!.ping())).toBe(true);

    // 4. pin-2 goes; a squatter with another key tries its id: signaling refuses it, pin-1 never links.
    await a2.stop();
    await waitFor(() => !a1.links.get('pin-2'), 'pin-1 to drop pin-2');
    const squatter = agent('pin-2');
    await waitFor(
      () =>
        events.some(
          (e) =>
            e.event === 'signaling_connection_failed' &&
            e.agent_id === 'pin-2' &&
            String((e.metadata as { error?: string }).error).startsWith('id_key_mismatch'),
        ),
      'the squatter to be refused',
    );
    await squatter.stop();
    expect(a1.links.get('pin-2')).toBeUndefined();
    expect(
      (await getJson(`${sig.http}/agents`)).json.agents.map((x: { agent_id: string }) => x.agent_id),
    ).toEqual(['pin-1']);
  });

  it('answers an offer from a peer whose agent-joined it never got, pinning the key signaling vouches for in the offer', async () => {
    const b = agent('lost-b');
    await waitFor(() => sig.server.core.local.has('lost-b'), 'lost-b registered');
    // The announcement of lost-a is lost, as a Redis pub/sub message is during a subscriber's
    // reconnect: lost-b learns of lost-a only from its offer.
    const core = sig.server.core;
    const broadcast = core.broadcast.bind(core);
    core.broadcast = (frame, except, mesh) =>
      frame.type === 'agent-joined' && frame.agent_id === 'lost-a' ? 0 : broadcast(frame, except, mesh);
    try {
      const a = agent('lost-a');
      await a.waitForPeers(['lost-b'], 15_000);
      await b.waitForPeers(['lost-a'], 15_000);
      expect(b64(b.keys.get('lost-a')!)).toBe(b64(a.publicKey));
      expect(Number.isFinite(await b.links.get('lost-a')!.ping())).toBe(true);
    } finally {
      core.broadcast = broadcast;
    }
  });
});
