// Issue 21, point 7 (per-peer replay windows): each agent kept one replay window for all its peers,
// so one peer's future-dated message, once evicted from a full window, raised the low-water mark for
// everyone and another peer's valid message was refused as `stale_timestamp`. Real werift agents on a
// real signaling server on loopback; the receiver remembers only a few nonces so the window fills.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { createSigner, generateKeyPair, type KeyPair } from '../../src/crypto/ed25519.js';
import { buildMessage, signMessage } from '../../src/crypto/ifmessage.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import type { WitnessEvent } from '../../src/protocol/witness.js';
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

describe('per-peer replay windows (issue 21.7)', () => {
  it("one peer's future-dated message does not make another peer's valid message stale", async () => {
    const received: { from: string; n: unknown }[] = [];
    const events: WitnessEvent[] = [];
    const keys: Record<string, KeyPair> = {};
    const make = (id: string, extra: Partial<ConstructorParameters<typeof MeshAgent>[0]> = {}) => {
      keys[id] = generateKeyPair();
      const a = new MeshAgent({
        agentId: id,
        identity: keys[id]!,
        signalingUrls: [sig.url],
        iceServers: [{ urls: turn.stunUrl }],
        loopbackOnly: true,
        ...extra,
      });
      agents.push(a);
      a.start();
      return a;
    };
    const receiver = make('rp-a', {
      replayCapacity: 8,
      onMessage: (from, m) => received.push({ from, n: m.payload.n }),
      events: { log: (e) => events.push(e) },
    });
    const early = make('rp-b');
    const honest = make('rp-c');
    await receiver.waitForPeers(['rp-b', 'rp-c'], 15_000);
    await early.waitForPeers(['rp-a'], 15_000);
    await honest.waitForPeers(['rp-a'], 15_000);

    // rp-b: a validly signed message dated 20 s ahead (inside the ±30 s skew), then enough messages
    // to push it out of the receiver's window.
    const ahead = signMessage(
      buildMessage({ from: 'rp-b', to: 'rp-a', type: 'note', payload: { n: 'ahead' } }, Date.now() + 20_000),
      createSigner(keys['rp-b']!.seed),
    );
    early.links.get('rp-a')!.dc!.send(JSON.stringify(ahead));
    await waitFor(() => received.some((r) => r.n === 'ahead'), 'the future-dated message');
    for (let i = 0; i < 16; i++) await early.send('rp-a', 'note', { n: i });
    await waitFor(
      () => received.filter((r) => r.from === 'rp-b').length + receiver.counters.signature_failures >= 17,
      'every rp-b message to be judged',
    );

    // rp-c's message now: accepted (before the fix: stale_timestamp).
    await honest.send('rp-a', 'note', { n: 'honest' });
    await waitFor(
      () =>
        received.some((r) => r.from === 'rp-c' && r.n === 'honest') ||
        events.some((e) => e.peer_id === 'rp-c' && e.event === 'signature_verification_failed'),
      "rp-c's message to be judged",
    );
    expect(events.filter((e) => e.peer_id === 'rp-c' && e.event === 'signature_verification_failed')).toEqual(
      [],
    );
    expect(received.some((r) => r.from === 'rp-c' && r.n === 'honest')).toBe(true);
  });
});
