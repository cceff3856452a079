// A failover against signaling instances that share a Redis cluster: an admin push to one instance
// already reaches every agent, so the failover sends it once — twice would make the agent start its
// reconnection over. Real redis-server, two in-process instances, real werift agents, one on each.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import { run, tempDir } from '../helpers/cli.js';
import { type ClusterInstance, startClusterInstance } from '../helpers/cluster.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { ADMIN } from '../helpers/signaling.js';
import { API_KEY, post, type RunningWitness, startWitness } from '../helpers/witness.js';

let redis: TestRedis;
let witness: RunningWitness;
let dir: { dir: string; cleanup: () => void };
const instances: ClusterInstance[] = [];
const agents: MeshAgent[] = [];

beforeAll(async () => {
  redis = await startRedis();
  witness = await startWitness();
  dir = tempDir();
  const prefix = `t-${randomUUID()}:`;
  for (const id of ['sig-r1', 'sig-r2']) instances.push(await startClusterInstance(redis.url, prefix, id));
  for (const [id, i] of [
    ['cl-a', instances[0]!],
    ['cl-b', instances[1]!],
  ] as const) {
    const a = new MeshAgent({
      agentId: id,
      identity: generateKeyPair(),
      signalingUrls: [i.url],
      iceServers: [],
      loopbackOnly: true,
    });
    agents.push(a);
    a.start();
  }
  await agents[0]!.waitForPeers(['cl-b'], 20_000);
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all(instances.map((i) => i.stop()));
  await witness?.stop();
  await redis?.cleanup();
  dir?.cleanup();
});

describe('failover partition on a Redis cluster', () => {
  it('pushes the reconnection once, through one instance, and the pair is whole again', async () => {
    const r = await run(
      [
        'failover',
        'partition',
        // The latency check's budget is not what these tests are about (a loaded machine).
        '--max-rtt-p95',
        '10s',
        '--signaling',
        instances.map((i) => i.url).join(','),
        '--agent',
        'cl-b',
        '--id',
        'fo-c-cluster',
        '--loopback',
        '--messages',
        '5',
        '--json',
      ],
      {
        cwd: dir.dir,
        env: {
          SIGNALING_ADMIN_TOKEN: ADMIN,
          IF_WITNESS_ENDPOINT: witness.url,
          IF_WITNESS_API_KEY: API_KEY,
          IFMESH_STATE_DIR: dir.dir,
        },
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.report.partition).toEqual({ reconnected: { 'cl-a': ['cl-b'] }, healed: true });
    const triggered = (
      await post(`${witness.url}/api/query`, {
        query: { event: 'mesh_healing_manual_triggered', failover_id: 'fo-c-cluster' },
      })
    ).json.results;
    expect(triggered).toMatchObject([{ agent_id: 'cl-a', metadata: { pushed: 1 } }]);
    expect(doc.validation.passed, JSON.stringify(doc.validation.checks)).toBe(true);
    expect(Number.isFinite(await agents[0]!.links.get('cl-b')!.ping())).toBe(true);
  }, 60_000);
});
