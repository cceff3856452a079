// `ifmesh rotate-keys` against real signaling instances, real werift agents and a real witness:
// every agent rotates (peers take the new key and refuse the old), an agent that never answers is
// named with exit 1, and the audit events land in the witness.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { createSigner, generateKeyPair, type KeyPair } from '../../src/crypto/ed25519.js';
import { buildMessage, signMessage } from '../../src/crypto/ifmessage.js';
import { freePort } from '../../src/ops/stack/stack.js';
import { requireBinary } from '../helpers/binaries.js';
import { BIN, run, tempDir } from '../helpers/cli.js';
import { FakeClock } from '../helpers/clock.js';
import { ADMIN, type RunningSignaling, startSignaling, TestClient } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, post, type RunningWitness, startWitness } from '../helpers/witness.js';

let sigA: RunningSignaling;
let sigB: RunningSignaling;
let witness: RunningWitness;
let dir: { dir: string; cleanup: () => void };
const agents: MeshAgent[] = [];
const keys: Record<string, KeyPair> = {};

beforeAll(async () => {
  witness = await startWitness();
  sigA = await startSignaling({ instanceId: 'sig-a' });
  sigB = await startSignaling({ instanceId: 'sig-b' });
  dir = tempDir();
  // rk-1 and rk-2 on instance A, rk-3 on instance B: a rotation must reach every instance.
  for (const [id, sig] of [
    ['rk-1', sigA],
    ['rk-2', sigA],
    ['rk-3', sigB],
  ] as const) {
    keys[id] = generateKeyPair();
    const a = new MeshAgent({
      agentId: id,
      identity: keys[id]!,
      signalingUrls: [sig.url],
      iceServers: [],
      loopbackOnly: true,
    });
    agents.push(a);
    a.start();
  }
  await agents[0]!.waitForPeers(['rk-2'], 20_000);
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await sigA?.stop();
  await sigB?.stop();
  await witness?.stop();
  dir?.cleanup();
});

const env = () => ({
  SIGNALING_ADMIN_TOKEN: ADMIN,
  IF_WITNESS_ENDPOINT: witness.url,
  IF_WITNESS_API_KEY: API_KEY,
  IFMESH_STATE_DIR: dir.dir,
});
const signaling = () => `${sigA.http},${sigB.http}`;

async function events(name: string): Promise<Record<string, any>[]> {
  return (await post(`${witness.url}/api/query`, { query: { event: name } })).json.results;
}

describe('rotate-keys', () => {
  it('--dry-run prints the plan and rotates nothing', async () => {
    const r = await run(
      ['rotate-keys', '--signaling', signaling(), '--incident-id', 'SEC-1', '--dry-run', '--json'],
      {
        cwd: dir.dir,
        env: env(),
      },
    );
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.plan).toMatchObject({
      incident_id: 'SEC-1',
      force_immediate: true,
      events: ['srtp_key_compromise_detected', 'srtp_key_rotated'],
    });
    expect(doc.plan.signaling).toEqual([sigA.http, sigB.http]);
    expect(sigA.server.core?.rotation ?? null).toBeNull();
  });

  it('rotates every agent on every instance, shows progress, logs the events; peers refuse the old keys', async () => {
    const r = await run(
      ['rotate-keys', '--signaling', signaling(), '--incident-id', 'SEC-2', '--timeout', '20s'],
      {
        cwd: dir.dir,
        env: env(),
      },
    );
    expect(r.stderr).toContain('progress: 3/3');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('keys rotated: 3/3 agents');
    const [a1, a2] = agents as [MeshAgent, MeshAgent];
    for (const [i, id] of ['rk-1', 'rk-2', 'rk-3'].entries())
      expect(Buffer.from(agents[i]!.publicKey).equals(Buffer.from(keys[id]!.publicKey)), id).toBe(false);
    await waitFor(
      () => Buffer.from(a2.links.get('rk-1')?.publicKey ?? []).equals(Buffer.from(a1.publicKey)),
      "rk-2 to take rk-1's new key",
      { timeoutMs: 20_000 },
    );
    expect(Number.isFinite(await a1.links.get('rk-2')!.ping())).toBe(true);
    const before = a2.counters.signature_failures;
    const old = signMessage(
      buildMessage({ from: 'rk-1', to: 'rk-2', type: 'ping' }, Date.now()),
      createSigner(keys['rk-1']!.seed),
    );
    a1.links.get('rk-2')!.dc!.send(JSON.stringify(old));
    await waitFor(() => a2.counters.signature_failures > before, 'the old-key message to be refused');
    const compromise = await events('srtp_key_compromise_detected');
    expect(compromise.at(-1)).toMatchObject({ incident_id: 'SEC-2', severity: 'critical' });
    const rotated = await events('srtp_key_rotated');
    expect(rotated.at(-1)).toMatchObject({
      incident_id: 'SEC-2',
      metadata: { completed: 3, total: 3, status: 'completed' },
    });
  });

  it('on a terminal: completed/total as a bar (ink), then the result', async () => {
    requireBinary('tmux', 'tmux');
    const session = `ifmesh-rk-${process.pid}`;
    const vars = `SIGNALING_ADMIN_TOKEN=${ADMIN} IFMESH_STATE_DIR=${dir.dir}`;
    execFileSync('tmux', [
      'new-session',
      '-d',
      '-s',
      session,
      '-x',
      '120',
      '-y',
      '20',
      `cd ${dir.dir} && env -u CI ${vars} ${process.execPath} ${BIN} rotate-keys --signaling ${signaling()} --timeout 30s; sleep 60`,
    ]);
    try {
      let screen = '';
      await waitFor(
        () => {
          screen = execFileSync('tmux', ['capture-pane', '-p', '-t', session]).toString();
          return screen.includes('keys rotated');
        },
        'rotate-keys to finish on the terminal',
        { timeoutMs: 30_000, intervalMs: 30 },
      );
      expect(screen).toContain(`✓ rotating keys [${'█'.repeat(20)}] 3/3 (100%)`);
      expect(screen).toContain('keys rotated: 3/3 agents');
    } finally {
      execFileSync('tmux', ['kill-session', '-t', session]);
    }
  });

  it('exits 1 naming the agent that did not answer in time (fake clock: no wall-clock wait)', async () => {
    // A registered client that never answers `keys-rotated`.
    const silent = new TestClient(sigB.url);
    try {
      await silent.register('rk-silent');
      const clock = new FakeClock(Date.now());
      const running = run(['rotate-keys', '--signaling', signaling(), '--timeout', '60s', '--json'], {
        cwd: dir.dir,
        env: env(),
        clock,
      });
      let finished = false;
      void running.then(() => {
        finished = true;
      });
      // Let the real agents answer, then move the clock past the timeout.
      await waitFor(async () => {
        const s = (await (await fetch(`${sigB.http}/admin/key-rotation-status`)).json()) as any;
        return s.pending?.length === 1 && sigA.server.core!.rotation!.completed.size === 2;
      }, 'the real agents to rotate');
      await waitFor(async () => {
        await clock.advance(1_000);
        return finished;
      }, 'rotate-keys to give up');
      const r = await running;
      expect(r.code).toBe(1);
      const doc = JSON.parse(r.stdout);
      expect(doc).toMatchObject({ ok: false, completed: 3, total: 4, pending: ['rk-silent'] });
      expect((await events('srtp_key_rotated')).at(-1)).toMatchObject({
        metadata: { status: 'incomplete', pending: ['rk-silent'] },
      });
      expect(await events('srtp_key_compromise_detected')).toHaveLength(1);
    } finally {
      silent.ws.close();
    }
  });

  it('an instance that does not answer: exit 1 naming it; none answering: exit 3', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = await run(
      ['rotate-keys', '--signaling', `${sigA.http},${dead}`, '--timeout', '20s', '--json'],
      {
        cwd: dir.dir,
        env: env(),
      },
    );
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.ok).toBe(false);
    expect(doc.instances.find((i: { url: string }) => i.url === dead).error).toContain('unreachable');
    const none = await run(['rotate-keys', '--signaling', dead], { cwd: dir.dir, env: env() });
    expect(none.code).toBe(3);
    expect(none.stderr).toContain('no signaling instance started a rotation');
  });

  it('without an admin token: exit 4 and a hint', async () => {
    const r = await run(['rotate-keys', '--signaling', signaling()], {
      cwd: dir.dir,
      env: { IFMESH_STATE_DIR: dir.dir },
    });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('SIGNALING_ADMIN_TOKEN');
  });
});
