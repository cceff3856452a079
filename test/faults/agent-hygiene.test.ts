import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import { run, tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { startService } from '../helpers/processes.js';
import { startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { recordFigure } from './figures.js';

const { dir, cleanup } = tempDir();
afterAll(() => cleanup());

describe('agent hygiene', () => {
  it('exits 0 on SIGTERM after relaying through TURN, saying goodbye to its peer', async () => {
    const turn = await startCoturn();
    const sig = await startSignaling();
    const peer = new MeshAgent({
      agentId: 'hy-a',
      identity: generateKeyPair(),
      signalingUrls: [sig.url],
      iceServers: [{ urls: turn.stunUrl }, { urls: turn.url, username: 'ifmesh', credential: 'test-pass' }],
      iceTransportPolicy: 'relay',
      loopbackOnly: true,
    });
    try {
      peer.start();
      await run(['keys', 'generate', '--agent', 'hy-b', '--out', 'keys'], { cwd: dir });
      const b = await startService(
        [
          'agent',
          'run',
          '--id',
          'hy-b',
          '--key',
          path.join(dir, 'keys/hy-b.key'),
          '--signaling',
          sig.url,
          '--stun',
          turn.stunUrl,
          '--turn',
          turn.url,
          '--turn-user',
          'ifmesh',
          '--turn-pass',
          'test-pass',
          '--ice-policy',
          'relay',
          '--loopback',
        ],
        { IFMESH_STATE_DIR: path.join(dir, 'state') },
      );
      await peer.waitForPeers(['hy-b'], 20_000);
      expect((await peer.links.get('hy-b')!.stats()).candidateType).toBe('relay');
      // Exiting 0 by itself (nothing here sends SIGKILL); how fast is the benchmark's to measure.
      b.kill('SIGTERM');
      expect(await b.exited).toBe(0);
      // It said goodbye: without the bye the peer would notice only by ICE consent expiry or the
      // 30 s heartbeat, well past this bound.
      await waitFor(() => peer.links.get('hy-b') === undefined, 'the peer to close its side', {
        timeoutMs: 10_000,
      });
    } finally {
      await peer.stop();
      await sig.stop();
      await turn.stop();
    }
  }, 60_000);

  it('grows RSS by under 10 % over 100 connect/disconnect cycles', async () => {
    const turn = await startCoturn();
    const sig = await startSignaling();
    const stay = new MeshAgent({
      agentId: 'cy-0',
      identity: generateKeyPair(),
      signalingUrls: [sig.url],
      iceServers: [{ urls: turn.stunUrl }],
      loopbackOnly: true,
    });
    stay.start();
    const cycle = async (i: number) => {
      const a = new MeshAgent({
        agentId: `cy-${i + 1}`,
        identity: generateKeyPair(),
        signalingUrls: [sig.url],
        iceServers: [{ urls: turn.stunUrl }],
        loopbackOnly: true,
      });
      a.start();
      await a.waitForPeers(['cy-0'], 10_000);
      await a.stop();
      await waitFor(() => stay.links.get(`cy-${i + 1}`) === undefined, `cy-0 to drop cy-${i + 1}`, {
        intervalMs: 5,
      });
    };
    try {
      // RSS after forced collections: what the cycles keep, not what the collector has yet to free.
      const settled = async () => {
        for (let i = 0; i < 3; i++) {
          (globalThis as { gc?: () => void }).gc?.();
          // Not synchronisation: a turn of the event loop lets finalizers and werift's closed
          // sockets release what the collection found.
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(typeof (globalThis as { gc?: () => void }).gc).toBe('function');
        return process.memoryUsage.rss();
      };
      for (let i = 0; i < 20; i++) await cycle(i);
      const before = await settled();
      for (let i = 20; i < 120; i++) await cycle(i);
      const after = await settled();
      process.stderr.write(
        `agent RSS over 100 cycles: ${(before / 1e6).toFixed(0)} MB -> ${(after / 1e6).toFixed(0)} MB\n`,
      );
      recordFigure({
        fault: 'agent connect/disconnect cycles (leak check)',
        trials: 100,
        expected: 'RSS grows under 10 %, no link left',
        observed: `RSS ${(before / 1e6).toFixed(0)} → ${(after / 1e6).toFixed(0)} MB, ${stay.links.size} links left`,
        figure: `${(((after - before) / before) * 100).toFixed(1)} % growth`,
        ok: stay.links.size === 0 && after / before < 1.1,
      });
      expect(stay.links.size).toBe(0);
      expect(after / before).toBeLessThan(1.1);
    } finally {
      await stay.stop();
      await sig.stop();
      await turn.stop();
    }
  }, 120_000);
});
