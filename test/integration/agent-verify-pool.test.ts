// Issue 24, point 1: under load an agent verifies signatures on worker threads (VerifyPool). A burst
// of messages from one peer, with forgeries and a replay among them, must be judged exactly as the
// inline path judges them (the same refusals, counted and reported with the same reasons) and the
// genuine ones delivered in the order they were sent. Real werift agents on loopback signaling.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { createSigner, generateKeyPair, type KeyPair } from '../../src/crypto/ed25519.js';
import { buildMessage, signMessage } from '../../src/crypto/ifmessage.js';
import { VerifyPool } from '../../src/crypto/verify-pool.js';
import type { WitnessEvent } from '../../src/protocol/witness.js';
import { type RunningSignaling, startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';

let sig: RunningSignaling;
const agents: MeshAgent[] = [];
const pools: VerifyPool[] = [];
beforeAll(async () => {
  sig = await startSignaling();
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all(pools.map((p) => p.close()));
  await sig.stop();
});

async function pair(prefix: string, pool: VerifyPool | false) {
  const received: unknown[] = [];
  const events: WitnessEvent[] = [];
  const keys: KeyPair = generateKeyPair();
  const sender = new MeshAgent({
    agentId: `${prefix}-a`,
    identity: keys,
    signalingUrls: [sig.url],
    iceServers: [],
    loopbackOnly: true,
    mesh: prefix,
  });
  const receiver = new MeshAgent({
    agentId: `${prefix}-b`,
    identity: generateKeyPair(),
    signalingUrls: [sig.url],
    iceServers: [],
    loopbackOnly: true,
    mesh: prefix,
    verifyPool: pool,
    onMessage: (_from, m) => received.push(m.payload.n),
    events: { log: (e) => events.push(e) },
  });
  agents.push(sender, receiver);
  sender.start();
  await waitFor(() => sender.signalingUrl !== undefined, 'the sender to register');
  receiver.start();
  await receiver.waitForPeers([sender.id], 15_000);
  await sender.waitForPeers([receiver.id], 15_000);
  return { sender, receiver, keys, received, events };
}

/**
 * 300 messages in one synchronous burst: genuine ones numbered 0…, every seventh a forgery (signed
 * by another key), and one genuine message sent twice. Returns what the receiver should make of it.
 */
function burst(p: Awaited<ReturnType<typeof pair>>) {
  const link = p.sender.links.get(p.receiver.id)!;
  const mallory = createSigner(generateKeyPair().seed);
  const genuine: number[] = [];
  let forged = 0;
  let replayText = '';
  for (let i = 0; i < 300; i++) {
    if (i % 7 === 3) {
      const m = buildMessage(
        { from: p.sender.id, to: p.receiver.id, type: 'note', payload: { n: -i } },
        Date.now(),
      );
      link.dc!.send(JSON.stringify(signMessage(m, mallory)));
      forged += 1;
    } else if (i === 151) {
      link.dc!.send(replayText);
    } else {
      const m = signMessage(
        buildMessage(
          { from: p.sender.id, to: p.receiver.id, type: 'note', payload: { n: i, pad: 'x'.repeat(600) } },
          Date.now(),
        ),
        createSigner(p.keys.seed),
      );
      const text = JSON.stringify(m);
      if (i === 100) replayText = text;
      link.dc!.send(text);
      genuine.push(i);
    }
  }
  return { genuine, forged };
}

describe('signature verification on worker threads', () => {
  it.each([
    ['pooled', 2],
    ['inline', 0],
  ] as const)(
    'judges a burst with forgeries and a replay like the inline path (%s)',
    async (name, workers) => {
      const pool = workers > 0 ? new VerifyPool({ workers }) : false;
      if (pool) pools.push(pool);
      const p = await pair(`vp-${name}`, pool);
      if (pool) expect(await pool.warm()).toBe(true);
      const { genuine, forged } = burst(p);
      await waitFor(
        () => p.received.length + p.receiver.counters.signature_failures >= genuine.length + forged + 1,
        'every message of the burst to be judged',
      );
      expect(p.received).toEqual(genuine);
      expect(p.receiver.counters.signature_failures).toBe(forged + 1);
      const reasons = p.events
        .filter((e) => e.event === 'signature_verification_failed')
        .map((e) => (e.metadata as { reason: string }).reason);
      expect(reasons.filter((r) => r === 'bad_signature')).toHaveLength(forged);
      expect(reasons.filter((r) => r === 'replayed_nonce')).toHaveLength(1);
      // The pooled run really went through the worker for part of the burst.
      if (pool) expect(pool.counts.pooled).toBeGreaterThan(0);
      // The channel still works, both ways.
      expect(Number.isFinite(await p.sender.links.get(p.receiver.id)!.ping())).toBe(true);
      expect(Number.isFinite(await p.receiver.links.get(p.sender.id)!.ping())).toBe(true);
    },
  );
});
