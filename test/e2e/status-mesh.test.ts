// `ifmesh status` on a fleet whose processes are up but whose mesh is not: two agents registered on
// the instance and no connection reported connected is a yellow line pointing at `verify`, with the
// exit code still the processes'. The instance is a real signaling server in this process, recorded
// in the state as the fleet's; the agents are bare WebSocket clients that register and report.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordProcess } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { requireBinary } from '../helpers/binaries.js';
import { spawnCli, tempDir } from '../helpers/cli.js';
import { startClusterInstance } from '../helpers/cluster.js';
import { startRedis } from '../helpers/redis.js';
import { writeReleaseRecord } from '../helpers/release-record.js';
import {
  connect,
  getJson,
  type RunningSignaling,
  startSignaling,
  type TestClient,
} from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';

/** Records an instance running in this test's process as the fleet's signaling `name`. */
function recordInstance(stateDir: string, name: string, url: string): void {
  recordProcess(openStateDir(stateDir), {
    name,
    role: 'signaling',
    pid: process.pid,
    port: Number(new URL(url).port),
    url,
    owner: 'test',
    started_at: new Date().toISOString(),
  });
}

const { dir, cleanup } = tempDir();
let sig: RunningSignaling;
const clients: TestClient[] = [];

beforeAll(async () => {
  sig = await startSignaling({ instanceId: 'signaling-1' });
  recordInstance(dir, 'signaling-1', sig.url);
  // The current release deploys a third agent that never registers (blocked, or down).
  writeReleaseRecord(dir, { id: 'r-1', agents: ['m-1', 'm-2', 'm-3'] });
  for (const id of ['m-1', 'm-2']) {
    const c = await connect(sig.url);
    await c.register(id);
    clients.push(c);
  }
});
afterAll(async () => {
  for (const c of clients) c.close();
  await sig?.stop();
  cleanup();
});

const status = () => spawnCli(['status', '--state-dir', dir], { cwd: dir, env: { NO_COLOR: '1' } });

describe('ifmesh status: the mesh line', () => {
  it('says no connection is connected among registered agents, pointing at verify; exit 0 (processes healthy)', async () => {
    const r = await status();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      `! mesh: 2 agents, no connection reported connected: ifmesh verify --state-dir ${dir} says why`,
    );
    const js = await spawnCli(['status', '--state-dir', dir, '--json'], { cwd: dir });
    expect(JSON.parse(js.stdout).mesh).toEqual({ agents: 2, connected: 0, unregistered: ['m-3'] });
    // The release's agent no instance has registered is named, though nothing records its process.
    expect(r.stdout).toContain('! not registered: m-3 of the current release (its process may run)');
  });

  it('counts the connections once an agent reports one connected, with no warning', async () => {
    clients[0]!.send({
      type: 'connection-state',
      peer_id: 'm-2',
      state: 'connected',
      candidate_type: 'host',
      rtt_ms: 1,
    });
    await waitFor(
      async () => (await getJson(`${sig.http}/connections`)).json.connections.length === 1,
      'the connection report on the instance',
    );
    const r = await status();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('  mesh: 2 agents, 1 connection reports connected');
    expect(r.stdout).not.toContain('! mesh');
    expect(r.stdout).toContain('! not registered: m-3');
  });
});

describe('ifmesh status with the Redis its instances share gone', () => {
  it("shows each instance's own word (degraded, cluster_store_unreachable) and names Redis, not 'no instance answers'", async () => {
    requireBinary('redis-server', 'redis-server');
    const redis = await startRedis();
    const state = tempDir();
    const inst = await startClusterInstance(redis.url, `st-${process.pid}:`, 'signaling-r1');
    try {
      recordInstance(state.dir, 'signaling-r1', inst.url);
      await redis.stop();
      await waitFor(
        async () => (await getJson(`${inst.http}/health`)).json?.status === 'degraded',
        'the instance to call itself degraded',
      );
      const r = await spawnCli(['status', '--state-dir', state.dir], {
        cwd: state.dir,
        env: { NO_COLOR: '1' },
      });
      expect(r.stdout).toContain('answers degraded (cluster_store_unreachable)');
      expect(r.stdout).toContain('mesh: not read: no signaling instance is ok: the Redis they share');
      expect(r.stdout).not.toContain('no signaling instance answers');
    } finally {
      await inst.stop();
      await redis.cleanup();
      state.cleanup();
    }
  });
});
