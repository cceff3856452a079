// SIGTERM to an agents process: it says bye to every peer, then exits 0. How fast is measured in
// `npm run bench stack` (target 2 s), not here.
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import { tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { startService } from '../helpers/processes.js';
import { startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';

const { dir, cleanup } = tempDir();
afterAll(() => cleanup());

describe('ifmesh agent swarm on SIGTERM', () => {
  it('sends bye to its peers and exits 0', async () => {
    const turn = await startCoturn();
    const sig = await startSignaling();
    // A 10-minute heartbeat: within this test only a bye can close the observer's channels.
    const observer = new MeshAgent({
      agentId: 'observer',
      identity: generateKeyPair(),
      signalingUrls: [sig.url],
      iceServers: [{ urls: turn.stunUrl }],
      loopbackOnly: true,
      heartbeatTimeoutMs: 600_000,
    });
    const swarm = await startService(
      [
        'agent',
        'swarm',
        '--count',
        '2',
        '--prefix',
        'sw',
        '--signaling',
        sig.url,
        '--stun',
        turn.stunUrl,
        '--loopback',
      ],
      { IFMESH_STATE_DIR: path.join(dir, 'state') },
    );
    try {
      observer.start();
      await observer.waitForPeers(['sw-1', 'sw-2'], 20_000);
      swarm.kill('SIGTERM');
      await waitFor(
        () => !observer.links.get('sw-1')?.ready && !observer.links.get('sw-2')?.ready,
        'the observer to hear bye from both swarm agents',
      );
      expect(await swarm.exited).toBe(0);
      // and left signaling
      const left = () =>
        sig.events
          .filter((e) => e.event === 'agent_left')
          .map((e) => e.agent_id)
          .sort();
      await waitFor(() => left().length === 2, 'agent_left for both swarm agents');
      expect(left()).toEqual(['sw-1', 'sw-2']);
    } finally {
      await observer.stop();
      await swarm.stop();
      await sig.stop();
      await turn.stop();
    }
  }, 60_000);
});
