import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import type { RunningTurnserver } from '../../src/exec/turnserver.js';
import type { WitnessEvent } from '../../src/protocol/witness.js';
import { startCoturn } from '../helpers/coturn.js';
import { postJson, type RunningSignaling, startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';

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
    await waitFor(() => a.signalingUrl !== undefined, 'bw-a to register');
    b.start();
    try {
      await a.waitForPeers(['bw-b'], 15_000);
      await b.waitForPeers(['bw-a'], 15_000);
      const body = { blob: 'x'.repeat(1000) };
      const link = a.links.get('bw-b')!;
      // Without a cap nothing waits: each message is on the channel before send() returns.
      const sent0 = link.sent;
      const free = Array.from({ length: 100 }, () => a.send('bw-b', 'data', body));
      expect(link.sent - sent0).toBe(100);
      await Promise.all(free);
      // 0.8 Mbit/s = 100 KB/s, with a quarter second (25 KB) of burst
      expect(
        (
          await postJson(`${sig.http}/config/bandwidth`, {
            enableBandwidthAdaptation: true,
            maxBitrateMbps: 0.8,
          })
        ).json.pushed,
      ).toBe(2);
      await waitFor(() => a.bandwidth !== undefined, 'the pushed cap to reach bw-a');
      expect(a.bandwidth).toEqual({ enableBandwidthAdaptation: true, maxBitrateMbps: 0.8 });
      const sent1 = link.sent;
      const t0 = performance.now();
      const capped = Array.from({ length: 100 }, () => a.send('bw-b', 'data', body));
      // Under the cap the bucket starts empty, so none goes out at once …
      expect(link.sent - sent1).toBe(0);
      await Promise.all(capped);
      const seconds = (performance.now() - t0) / 1000;
      // … and no more leaves than the cap allows plus one burst. A slower machine only takes
      // longer, which keeps this true: it is the cap's guarantee, not a speed.
      const bytesCharged = 100 * (JSON.stringify(body).length + 400);
      expect(bytesCharged).toBeLessThanOrEqual(100_000 * seconds + 25_000);
      await waitFor(() => received === 200, 'all 200 messages to arrive');
      const bw = events.filter((e) => e.event === 'bandwidth_update' && e.agent_id === 'bw-a');
      expect(bw.some((e) => (e.metadata as { bytesPerSecond: number }).bytesPerSecond > 0)).toBe(true);
      expect((bw[bw.length - 1]!.metadata as { capBytesPerSecond: number }).capBytesPerSecond).toBe(100_000);
    } finally {
      await a.stop();
      await b.stop();
    }
  }, 30_000);
});
