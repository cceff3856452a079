import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { createSigner, generateKeyPair, type KeyPair } from '../../src/crypto/ed25519.js';
import { buildMessage, signMessage } from '../../src/crypto/ifmessage.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import { startCoturn } from '../helpers/coturn.js';
import { ADMIN, getJson, postJson, type RunningSignaling, startSignaling } from '../helpers/signaling.js';
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

describe('key rotation', () => {
  it('rotates on rotate-keys: new identity, re-registered, keys-rotated; peers take the new key and refuse the old', async () => {
    const keys: Record<string, KeyPair> = { 'rot-1': generateKeyPair(), 'rot-2': generateKeyPair() };
    for (const id of ['rot-1', 'rot-2']) {
      const a = new MeshAgent({
        agentId: id,
        identity: keys[id]!,
        signalingUrls: [sig.url],
        iceServers: [{ urls: turn.stunUrl }],
        loopbackOnly: true,
      });
      agents.push(a);
      a.start();
    }
    const [a1, a2] = agents as [MeshAgent, MeshAgent];
    await a1.waitForPeers(['rot-2'], 15_000);
    await a2.waitForPeers(['rot-1'], 15_000);
    const started = await postJson(`${sig.http}/admin/rotate-keys`, { rotation_reason: 'test' }, ADMIN);
    expect(started.json).toMatchObject({ status: 'started', total: 2 });
    let status: { completed: number; total: number; status: string } = { completed: 0, total: 2, status: '' };
    await waitFor(async () => {
      status = (await getJson(`${sig.http}/admin/key-rotation-status`)).json;
      return status.status === 'completed';
    }, 'the rotation to complete');
    expect(status).toMatchObject({ completed: 2, total: 2, status: 'completed' });
    expect(Buffer.from(a1.publicKey).equals(Buffer.from(keys['rot-1']!.publicKey))).toBe(false);
    // the signaling server and the peer both know the new key
    const listed = (await getJson(`${sig.http}/agents`)).json.agents.find(
      (x: { agent_id: string }) => x.agent_id === 'rot-1',
    );
    expect(listed.public_key).toBe(Buffer.from(a1.publicKey).toString('base64url'));
    await waitFor(
      () => Buffer.from(a2.links.get('rot-1')?.publicKey ?? []).equals(Buffer.from(a1.publicKey)),
      "rot-2 to take rot-1's new key",
    );
    // messages under the new key pass, under the old one they are refused
    expect(Number.isFinite(await a1.links.get('rot-2')!.ping())).toBe(true);
    const before = a2.counters.signature_failures;
    const old = signMessage(
      buildMessage({ from: 'rot-1', to: 'rot-2', type: 'ping' }, Date.now()),
      createSigner(keys['rot-1']!.seed),
    );
    a1.links.get('rot-2')!.dc!.send(JSON.stringify(old));
    await waitFor(() => a2.counters.signature_failures > before, 'the old-key message to be refused');
    expect(a2.counters.signature_failures).toBe(before + 1);
  });
});
