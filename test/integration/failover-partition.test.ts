// `ifmesh failover partition` (scenario C) with a really frozen agent: pc-b, a separate `ifmesh agent
// run` process, is stopped with SIGSTOP until pc-a sees the partition, then thawed with SIGCONT. Both
// agents' own healing is pushed minutes away, so only the failover's manual, staggered reconnection
// can make the pair whole again within the test.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { WitnessClient } from '../../src/clients/witness.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { run, tempDir } from '../helpers/cli.js';
import { type Service, startService } from '../helpers/processes.js';
import { ADMIN, type RunningSignaling, startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, post, type RunningWitness, startWitness } from '../helpers/witness.js';

let sig: RunningSignaling;
let witness: RunningWitness;
let dir: { dir: string; cleanup: () => void };
let a: MeshAgent;
let b: Service;
let events: WitnessClient;

const q = async (query: Record<string, unknown>) =>
  (await post(`${witness.url}/api/query`, { query })).json.results as Record<string, any>[];

beforeAll(async () => {
  witness = await startWitness();
  sig = await startSignaling({ instanceId: 'sig-c' });
  dir = tempDir();
});
afterAll(async () => {
  b?.kill('SIGCONT');
  await a?.stop();
  await b?.stop();
  await events?.close(2_000);
  await sig?.stop();
  await witness?.stop();
  dir?.cleanup();
});

describe('failover partition (scenario C)', () => {
  it('heals a frozen-then-thawed agent by a manual reconnection, logged under the failover id', async () => {
    events = new WitnessClient({
      url: witness.url,
      apiKey: API_KEY,
      producer: 'pc-a',
      spoolDir: openStateDir(dir.dir).spool,
    });
    a = new MeshAgent({
      agentId: 'pc-a',
      identity: generateKeyPair(),
      signalingUrls: [sig.url],
      iceServers: [],
      loopbackOnly: true,
      heartbeatTimeoutMs: 1_500,
      healingBaseMs: 600_000,
      events,
    });
    await run(['keys', 'generate', '--agent', 'pc-b', '--out', 'keys'], { cwd: dir.dir });
    b = await startService(
      [
        'agent',
        'run',
        '--id',
        'pc-b',
        '--key',
        path.join(dir.dir, 'keys/pc-b.key'),
        '--signaling',
        sig.url,
        '--loopback',
        '--heartbeat-timeout',
        '1500',
        '--healing-base',
        '600000',
      ],
      { IFMESH_STATE_DIR: path.join(dir.dir, 'agent-state') },
    );
    a.start();
    await a.waitForPeers(['pc-b'], 20_000);

    b.kill('SIGSTOP');
    await waitFor(
      async () => (await q({ event: 'mesh_partition_detected', agent_id: 'pc-a' })).length > 0,
      'pc-a to see the partition',
      { timeoutMs: 20_000 },
    );
    expect(a.links.get('pc-b')?.ready ?? false).toBe(false);
    b.kill('SIGCONT');

    const env = {
      SIGNALING_ADMIN_TOKEN: ADMIN,
      IF_WITNESS_ENDPOINT: witness.url,
      IF_WITNESS_API_KEY: API_KEY,
      IFMESH_STATE_DIR: dir.dir,
    };
    const dry = await run(
      [
        'failover',
        'partition',
        // The latency check's budget is not what these tests are about (a loaded machine).
        '--max-rtt-p95',
        '10s',
        '--signaling',
        sig.url,
        '--agent',
        'pc-b',
        '--id',
        'fo-c-dry',
        '--dry-run',
        '--json',
      ],
      { cwd: dir.dir, env },
    );
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout).plan.partition).toEqual({ agent: 'pc-b', stagger_ms: 500 });
    expect(await q({ event: 'mesh_healing_manual_triggered' })).toEqual([]);

    const r = await run(
      [
        'failover',
        'partition',
        // The latency check's budget is not what these tests are about (a loaded machine).
        '--max-rtt-p95',
        '10s',
        '--signaling',
        sig.url,
        '--agent',
        'pc-b',
        '--id',
        'fo-c-1',
        '--loopback',
        '--messages',
        '5',
        '--json',
      ],
      { cwd: dir.dir, env },
    );
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    // The smaller id offers: pc-a is asked to reconnect to pc-b.
    expect(doc.report.partition).toEqual({ reconnected: { 'pc-a': ['pc-b'] }, healed: true });
    expect(doc.validation.passed, JSON.stringify(doc.validation.checks)).toBe(true);
    await a.waitForPeers(['pc-b'], 10_000);
    expect(Number.isFinite(await a.links.get('pc-b')!.ping())).toBe(true);
    expect(await q({ event: 'mesh_healing_manual_triggered', failover_id: 'fo-c-1' })).toMatchObject([
      { agent_id: 'pc-a', metadata: { peers_reconnecting: 1 } },
    ]);
    expect((await q({ failover_id: 'fo-c-1' })).map((e) => e.event)).toContain('failover_recovery_validated');
  }, 120_000);

  it('an agent that is not registered is refused, exit 1, nothing pushed', async () => {
    const r = await run(
      ['failover', 'partition', '--signaling', sig.url, '--agent', 'nobody', '--id', 'fo-c-2', '--json'],
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
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/agent nobody is not registered/);
    expect(await q({ event: 'mesh_healing_manual_triggered', failover_id: 'fo-c-2' })).toEqual([]);
  });
});
