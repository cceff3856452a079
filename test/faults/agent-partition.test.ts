// A frozen agent (SIGSTOP) past the heartbeat timeout is a partition; once it runs again (SIGCONT)
// the mesh heals by itself.
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import type { WitnessEvent } from '../../src/protocol/witness.js';
import { run, tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { startService } from '../helpers/processes.js';
import { startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { recordFigure } from './figures.js';

const { dir, cleanup } = tempDir();
afterAll(() => cleanup());

describe('partition healing', () => {
  it('detects a frozen peer, and the mesh is whole again after it resumes', async () => {
    const turn = await startCoturn();
    const sig = await startSignaling();
    const events: WitnessEvent[] = [];
    const a = new MeshAgent({
      agentId: 'agent-a',
      identity: generateKeyPair(),
      signalingUrls: [sig.url],
      iceServers: [{ urls: turn.stunUrl }],
      loopbackOnly: true,
      heartbeatTimeoutMs: 1_500,
      healingBaseMs: 250,
      events: { log: (e) => events.push(e) },
    });
    await run(['keys', 'generate', '--agent', 'agent-b', '--out', 'keys'], { cwd: dir });
    const b = await startService(
      [
        'agent',
        'run',
        '--id',
        'agent-b',
        '--key',
        path.join(dir, 'keys/agent-b.key'),
        '--signaling',
        sig.url,
        '--stun',
        turn.stunUrl,
        '--loopback',
        '--heartbeat-timeout',
        '1500',
        '--healing-base',
        '250',
      ],
      { IFMESH_STATE_DIR: path.join(dir, 'state') },
    );
    try {
      a.start();
      await a.waitForPeers(['agent-b'], 15_000);
      const stoppedAt = Date.now();
      b.kill('SIGSTOP');
      await waitFor(() => events.some((e) => e.event === 'mesh_partition_detected'), 'the partition');
      const detectedMs = Date.now() - stoppedAt;
      expect(events.find((e) => e.event === 'mesh_partition_detected')).toMatchObject({
        agent_id: 'agent-a',
        peer_id: 'agent-b',
      });
      expect(a.links.get('agent-b')?.ready ?? false).toBe(false);
      const resumedAt = Date.now();
      b.kill('SIGCONT');
      // Whole again: a signed ping through a's current link is answered. A link can form and be
      // replaced once more while both ends settle (b's own timers ran late, it was frozen), so the
      // ping is retried on a fresh link until the bound. On failure, say how healing went: the
      // attempts a made, the link a holds, and what b logged.
      let lastError = '';
      const whole = await waitFor(
        async () => {
          const l = a.links.get('agent-b');
          if (!l?.ready) {
            lastError = 'no ready link to agent-b';
            return false;
          }
          const rtt = await l.ping(2_000).catch((err: Error) => {
            lastError = err.message;
            return Number.NaN;
          });
          return Number.isFinite(rtt);
        },
        'a ping answered after the resume',
        { timeoutMs: 20_000 },
      ).then(
        () => true,
        () => false,
      );
      if (!whole) {
        const tried = events
          .filter((e) => e.agent_id === 'agent-a' && e.event !== 'bandwidth_update')
          .map((e) => {
            const state = (e.metadata as { state?: unknown } | undefined)?.state;
            return state ? `${e.event}(${String(state)})` : e.event;
          });
        const l = a.links.get('agent-b');
        const link = l ? `link closed=${l.closed} ready=${l.ready} offerer=${l.offerer}` : 'no link';
        throw new Error(
          `no ping answered: ${lastError}\nagent-a: ${tried.join(', ')}\n${link}\nagent-b: ${b.stderr().slice(-2_000)}`,
        );
      }
      const healedMs = Date.now() - resumedAt;
      recordFigure({
        fault: 'agent frozen (SIGSTOP), then resumed (SIGCONT)',
        trials: 1,
        expected: 'detected at the 1.5 s heartbeat timeout; healed after SIGCONT',
        observed: `detected after ${(detectedMs / 1000).toFixed(1)} s, healed ${(healedMs / 1000).toFixed(1)} s after SIGCONT`,
        figure: `heal ${(healedMs / 1000).toFixed(1)} s`,
        ok: true,
      });
      expect(events.map((e) => e.event)).toEqual(
        expect.arrayContaining(['mesh_healing_attempt', 'mesh_partition_healed']),
      );
    } finally {
      b.kill('SIGCONT');
      await a.stop();
      await b.stop();
      await sig.stop();
      await turn.stop();
    }
  }, 60_000);
});
