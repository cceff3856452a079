import { afterAll, describe, expect, it } from 'vitest';
import { spawnCli, stateDir, tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { startSignalingProcess } from '../helpers/processes.js';
import { API_KEY, startWitness } from '../helpers/witness.js';

const { dir, cleanup } = tempDir();
afterAll(() => cleanup());

describe('ifmesh verify --witness', () => {
  it('sends the temporary agents’ events to the witness it names', async () => {
    const turn = await startCoturn();
    const sig = await startSignalingProcess();
    const witness = await startWitness();
    try {
      const env = { IF_WITNESS_API_KEY: API_KEY, IFMESH_STATE_DIR: stateDir(dir) };
      const r = await spawnCli(
        [
          'verify',
          '--message-exchange',
          '--messages',
          '5',
          '--signaling',
          sig.ready.http_url as string,
          '--stun',
          turn.stunUrl,
          '--loopback',
          '--witness',
          witness.url,
          // Not about latency: the RTT budget itself is tested in agent-cli.test.ts.
          '--max-rtt-p95',
          '10s',
          '--json',
        ],
        { cwd: dir, env, timeoutMs: 60_000 },
      );
      expect(r.code, r.stderr).toBe(0);
      const q = await spawnCli(
        ['witness', 'query', '--event', 'p2p_connection_established', '--witness', witness.url, '--json'],
        { cwd: dir, env },
      );
      expect(q.code, q.stderr).toBe(0);
      const agents = new Set(
        JSON.parse(q.stdout).results.map((e: { agent_id: string }) => e.agent_id.replace(/-\d+$/, '-N')),
      );
      // three temporary agents, each with two peers, all from one verify run
      expect(JSON.parse(q.stdout).results.length).toBeGreaterThanOrEqual(6);
      expect([...agents]).toEqual([expect.stringMatching(/^verify-[0-9a-f]{8}-N$/)]);
    } finally {
      await witness.stop();
      await sig.stop();
      await turn.stop();
    }
  }, 90_000);
});
