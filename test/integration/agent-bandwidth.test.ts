import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import type { WitnessEvent } from '../../src/protocol/witness.js';
import { startCoturn } from '../helpers/coturn.js';
import { postJson, type RunningSignaling, startSignaling } from '../helpers/signaling.js';

let turn: RunningTurnserver;
let sig: RunningSignaling;
beforeAll(async () => {
  turn = await startCoturn();
  sig = await startSignaling();
});
afterAll(async () => {
  await sig.stop();
  await turn.stop();
});

describe('bandwidth adaptation', () => {
  it('caps what an agent sends once a bitrate is pushed, and reports bandwidth_update', async () => {
    const events: WitnessEvent[] = [];
    let received = 0;
    const mk = (id: string) =>
      new MeshAgent({
        agentId: id,
        identity: generateKeyPair(),
        signalingUrls: [sig.url],
        iceServers: [{ urls: turn.stunUrl }],
        loopbackOnly: true,
        statsIntervalMs: 250,
        events: { log: (e) => events.push(e) },
        onMessage: () => {
          received += 1;
        },
      });
    const [a, b] = [mk('bw-a'), mk('bw-b')];
    a.start();
    await new Promise((r) => setTimeout(r, 50));
    b.start();
    try {
      await a.waitForPeers(['bw-b'], 15_000);
      await b.waitForPeers(['bw-a'], 15_000);
      const body = { blob: 'x'.repeat(1000) };
      let t0 = performance.now();
      for (let i = 0; i < 100; i++) await a.send('bw-b', 'data', body);
      const free = performance.now() - t0;
      // 0.8 Mbit/s = 100 KB/s: 100 messages of ~1.4 KB take at least ~1.1 s once the 25 KB burst is spent
      expect(
        (
          await postJson(`${sig.http}/config/bandwidth`, {
            enableBandwidthAdaptation: true,
            maxBitrateMbps: 0.8,
          })
        ).json.pushed,
      ).toBe(2);
      await new Promise((r) => setTimeout(r, 100));
      expect(a.bandwidth).toEqual({ enableBandwidthAdaptation: true, maxBitrateMbps: 0.8 });
      t0 = performance.now();
      for (let i = 0; i < 100; i++) await a.send('bw-b', 'data', body);
      const capped = performance.now() - t0;
      expect(free).toBeLessThan(500);
      expect(capped).toBeGreaterThan(1_000);
      await new Promise((r) => setTimeout(r, 300));
      expect(received).toBe(200);
      const bw = events.filter((e) => e.event === 'bandwidth_update' && e.agent_id === 'bw-a');
      expect(bw.some((e) => (e.metadata as { bytesPerSecond: number }).bytesPerSecond > 0)).toBe(true);
      expect((bw[bw.length - 1]!.metadata as { capBytesPerSecond: number }).capBytesPerSecond).toBe(100_000);
    } finally {
      await a.stop();
      await b.stop();
    }
  }, 30_000);
});
