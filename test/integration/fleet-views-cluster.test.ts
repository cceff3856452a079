// Two signaling instances sharing one real redis-server, three real werift agents (two on the first
// instance, one on the second, loopback only). Both instances list all three agents and all six
// connection reports; every view over both counts each once, and rotate-keys rotates the cluster
// once: 3/3, not "3 of 6" with the second rotation superseding the first.
import { randomUUID } from 'node:crypto';
import { getGlobalDispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { systemClock, systemExec } from '../../src/cli/context.js';
import { SignalingClient } from '../../src/clients/signaling.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import type { CheckReport } from '../../src/ops/monitoring/check.js';
import { collectMesh } from '../../src/ops/monitoring/collect.js';
import type { TopView } from '../../src/ops/monitoring/monitor.js';
import { verifyDeployment } from '../../src/ops/verify/deployment.js';
import { run, tempDir } from '../helpers/cli.js';
import { type ClusterInstance, startClusterInstance, until } from '../helpers/cluster.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { ADMIN } from '../helpers/signaling.js';
import { type RunningWitness, startWitness } from '../helpers/witness.js';

let redis: TestRedis;
let witness: RunningWitness;
let dir: { dir: string; cleanup: () => void };
const instances: ClusterInstance[] = [];
const agents: MeshAgent[] = [];

beforeAll(async () => {
  redis = await startRedis();
  witness = await startWitness();
  dir = tempDir();
  const prefix = `fv-${randomUUID()}:`;
  for (const id of ['sig-v1', 'sig-v2']) instances.push(await startClusterInstance(redis.url, prefix, id));
  for (const [id, i] of [
    ['fv-1', instances[0]!],
    ['fv-2', instances[0]!],
    ['fv-3', instances[1]!],
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
  await Promise.all(
    agents.map((a, n) =>
      a.waitForPeers(
        ['fv-1', 'fv-2', 'fv-3'].filter((_, k) => k !== n),
        30_000,
      ),
    ),
  );
  // Both instances see the six reports (each agent about its two peers) through the shared registry.
  for (const i of instances)
    await until(
      `six connected reports on ${i.http}`,
      async () =>
        (await new SignalingClient(i.http).connections()).connections.filter((c) => c.state === 'connected')
          .length === 6,
      20_000,
    );
}, 90_000);
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all(instances.map((i) => i.stop()));
  await witness?.stop();
  await redis?.cleanup();
  dir?.cleanup();
});

const env = () => ({ SIGNALING_ADMIN_TOKEN: ADMIN, IFMESH_STATE_DIR: dir.dir });
const signaling = () => instances.map((i) => i.http).join(',');

describe('views over a 2-instance Redis cluster count each agent and report once', () => {
  it('both instances name the same cluster in /health; a standalone-looking view would double', async () => {
    const [h1, h2] = await Promise.all(instances.map((i) => new SignalingClient(i.url).health()));
    expect(h1!.cluster_id).toMatch(/^redis-[0-9a-f]{12}$/);
    expect(h2!.cluster_id).toBe(h1!.cluster_id);
    expect(h1).toMatchObject({ status: 'ok', cluster: 'redis', instance_id: 'sig-v1' });
    for (const i of instances) expect((await new SignalingClient(i.http).agents()).agents).toHaveLength(3);
  });

  it('collectMesh and verify: 3 agents, 6 reports, 3 pairs', async () => {
    const mesh = await collectMesh({ signaling: instances.map((i) => i.http), now: Date.now });
    expect(mesh.instances.map((i) => i.up)).toEqual([true, true]);
    expect(mesh.agents.map((a) => a.agent_id).sort()).toEqual(['fv-1', 'fv-2', 'fv-3']);
    expect(mesh.connections).toHaveLength(6);
    const ctx = {
      clock: systemClock,
      signal: new AbortController().signal,
      exec: systemExec,
      dispatcher: getGlobalDispatcher(),
      env: {},
      cwd: dir.dir,
    };
    const report = await verifyDeployment(ctx, {
      signalingHttp: instances.map((i) => i.url),
      retries: 1,
      intervalMs: 0,
      exchange: async () => {
        throw new Error('not run here');
      },
    });
    expect(report.steps.find((s) => s.name === 'agents_registered')?.data).toEqual({ agents: 3 });
    expect(report.steps.find((s) => s.name === 'connections_established')?.data).toEqual({
      connected: 3,
      expected: 3,
      agents: 3,
    });
  });

  it('monitoring check and top: 6 connected reports of 3 agents, not 12 of 6', async () => {
    const flags = ['--signaling', signaling(), '--witness', witness.url, '--json'];
    const check = await run(['monitoring', 'check', '--sample-ms', '200', ...flags], {
      cwd: dir.dir,
      env: env(),
    });
    const report = JSON.parse(check.stdout) as CheckReport;
    const p2p = report.rows.find((r) => r.id === 'p2p_connection_rate')!;
    expect(p2p).toMatchObject({ status: 'ok', value: 1 });
    expect(p2p.detail).toBe('6 of 6 connected reports direct');
    expect(report.rows.find((r) => r.id === 'failed_connections')).toMatchObject({ value: 0 });
    const top = await run(['top', '--interval', '200', ...flags], { cwd: dir.dir, env: env() });
    expect(top.code, top.stderr).toBe(0);
    const view = JSON.parse(top.stdout) as TopView;
    expect(view.agents.map((a) => a.agent_id)).toEqual(['fv-1', 'fv-2', 'fv-3']);
    expect(view.agents.map((a) => a.instance)).toEqual(['sig-v1', 'sig-v1', 'sig-v2']);
    expect(view.connections).toHaveLength(6);
    expect(view.turn).toMatchObject({ connected: 6, relay_connections: 0 });
  });

  it('rotate-keys posts once for the cluster and completes 3/3', async () => {
    const r = await run(['rotate-keys', '--signaling', signaling(), '--timeout', '20s', '--json'], {
      cwd: dir.dir,
      env: env(),
    });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ ok: true, completed: 3, total: 3, pending: [] });
    expect(doc.instances).toHaveLength(1);
    expect(doc.instances[0]).toMatchObject({
      url: instances[0]!.http,
      completed: 3,
      total: 3,
      covers: instances.map((i) => i.http),
    });
    // One rotation in the cluster: both instances report the one that was started.
    for (const i of instances)
      expect(await new SignalingClient(i.http).keyRotationStatus()).toMatchObject({
        status: 'completed',
        rotation_id: doc.instances[0].rotation_id,
        completed: 3,
        total: 3,
      });
  });
});
