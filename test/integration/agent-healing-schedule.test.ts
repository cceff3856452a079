// The healing backoff (1 s, 2 s, 4 s … 10 attempts) on a fake clock: a frozen peer (SIGSTOP) is
// partitioned once the clock passes the heartbeat timeout, and the whole 17-minute schedule runs in
// one `advance`, each attempt exactly when it is due.
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import { run, tempDir } from '../helpers/cli.js';
import { FakeClock } from '../helpers/clock.js';
import { startCoturn } from '../helpers/coturn.js';
import { startService } from '../helpers/processes.js';
import { startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';

const { dir, cleanup } = tempDir();
afterAll(() => cleanup());

describe('partition healing on an injected clock', () => {
  it('detects the partition after the heartbeat timeout and retries at 1, 2, 4 … 512 s, then gives up', async () => {
    const turn = await startCoturn();
    const sig = await startSignaling();
    // Real time for the handshake (signed hellos carry timestamps peers check): start at now.
    const clock = new FakeClock(Date.now());
    const log: { event: string; at: number; metadata: Record<string, unknown> }[] = [];
    // 'agent-z' > 'agent-b': the smaller id offers when healing, so z only schedules, never dials.
    const z = new MeshAgent({
      agentId: 'agent-z',
      identity: generateKeyPair(),
      signalingUrls: [sig.url],
      iceServers: [{ urls: turn.stunUrl }],
      loopbackOnly: true,
      heartbeatTimeoutMs: 3_000,
      healingBaseMs: 1_000,
      clock,
      events: {
        log: (e) =>
          log.push({
            event: e.event,
            at: clock.now(),
            metadata: (e.metadata ?? {}) as Record<string, unknown>,
          }),
      },
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
        '600000',
      ],
      { IFMESH_STATE_DIR: path.join(dir, 'state') },
    );
    try {
      z.start();
      await waitFor(() => z.links.get('agent-b')?.ready ?? false, 'a ready channel to agent-b', {
        timeoutMs: 20_000,
      });
      b.kill('SIGSTOP');
      const t0 = clock.now();
      await clock.advance(1_100_000);
      const at = (name: string) => log.filter((e) => e.event === name).map((e) => e.at - t0);

      // heartbeats every 1 s; silent for more than 3 s at the fourth
      expect(at('mesh_partition_detected')).toEqual([4_000]);
      const attempts = log.filter(
        (e) => e.event === 'mesh_healing_attempt' || e.event === 'mesh_reconnection_scheduled',
      );
      expect(attempts.map((e) => e.metadata.delay_ms)).toEqual([
        1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 512_000,
      ]);
      expect(attempts.map((e) => e.metadata.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      // each attempt is scheduled exactly when the previous delay ran out
      let due = 4_000;
      for (const e of attempts) {
        expect(e.at - t0).toBe(due);
        due += e.metadata.delay_ms as number;
      }
      expect(at('mesh_healing_failed_final')).toEqual([due]);
      expect(at('mesh_partition_healed')).toEqual([]);
    } finally {
      b.kill('SIGCONT');
      await z.stop();
      await b.stop();
      await sig.stop();
      await turn.stop();
    }
  }, 60_000);
});
