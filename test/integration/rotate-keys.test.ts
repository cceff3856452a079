// `ifmesh rotate-keys` against real signaling instances, real werift agents and a real witness:
// every agent rotates (peers take the new key and refuse the old), an agent that never answers is
// named with exit 1, and the audit events land in the witness. The runbook's step 4 (failed
// connections 10 s after the rotation) waits on the injected clock; an emergency without an incident
// id declares a SEC- security incident; the periodic rotation (`--if-due`, run by cron) rotates only
// when due and tells a local Slack receiver when it does not complete.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { createSigner, generateKeyPair, type KeyPair } from '../../src/crypto/ed25519.js';
import { buildMessage, signMessage } from '../../src/crypto/ifmessage.js';
import { readIncident } from '../../src/ops/incident/store.js';
import { readRotationRecord } from '../../src/ops/keys/schedule.js';
import { freePort } from '../../src/ops/stack/stack.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { run, stateDir, tempDir } from '../helpers/cli.js';
import { FakeClock } from '../helpers/clock.js';
import { receiver } from '../helpers/notify-receivers.js';
import { writeReleaseRecord } from '../helpers/release-record.js';
import { ADMIN, getJson, type RunningSignaling, startSignaling, TestClient } from '../helpers/signaling.js';
import { terminal } from '../helpers/tmux.js';
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
    // No terminal: progress is lines of the human output, before the result.
    expect(r.stdout).toContain('progress: 3/3');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('keys rotated: 3/3 agents');
    // The runbook's step 4 with its own 10 s: the real agents re-established with their new keys.
    expect(r.stdout).toContain('waiting 10 s, then counting failed connections');
    expect(r.stdout).toContain('✓ all connections stable 10 s after rotation (0 before)');
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

  it('on a terminal: completed/total as a bar (ink), replaced by the result', async () => {
    const t = terminal(['rotate-keys', '--signaling', signaling(), '--timeout', '30s', '--settle', '2s'], {
      cwd: dir.dir,
      env: { SIGNALING_ADMIN_TOKEN: ADMIN, IFMESH_STATE_DIR: dir.dir },
      rows: 20,
    });
    try {
      let sawBar = false;
      await t.until((screen) => {
        if (screen.includes(`✓ rotating keys [${'█'.repeat(20)}] 3/3 (100%)`)) sawBar = true;
        return screen.includes('keys rotated');
      }, 'rotate-keys to finish on the terminal');
      expect(await t.exitCode()).toBe(0);
      expect(sawBar).toBe(true);
      const screen = t.screen();
      expect(screen).toContain('keys rotated: 3/3 agents');
      expect(screen).not.toContain('rotating keys [');
    } finally {
      t.kill();
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

  it('exits 1 naming a deployed agent that was not registered: it keeps its old key', async () => {
    // The fleet's current release deploys a fourth agent that no instance has (stopped, blocked).
    const state = stateDir(dir.dir, 'released');
    writeReleaseRecord(state, { id: 'r-1', agents: ['rk-1', 'rk-2', 'rk-3', 'rk-gone'] });
    const r = await run(['rotate-keys', '--signaling', signaling(), '--settle', '0s', '--state-dir', state], {
      cwd: dir.dir,
      env: { ...env(), NO_COLOR: '1' },
    });
    expect(r.code, r.stderr).toBe(1);
    // rk-gone counts: "3/3 agents" read as complete
    expect(r.stdout).toContain('✗ key rotation incomplete: 3/4 agents (1 not registered)');
    expect(r.stdout).toContain('not registered, so not rotated (old keys): rk-gone');
    expect(r.stdout).toContain('rk-gone of the current release was not registered and kept the old keys');
    await waitFor(
      async () =>
        (await events('srtp_key_rotated')).some(
          (e) => e.metadata.status === 'incomplete' && e.metadata.not_registered?.[0] === 'rk-gone',
        ),
      'the incomplete rotation in the witness, naming rk-gone',
    );
  });

  it('an instance that does not answer: exit 1 naming it; none answering: exit 3', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = await run(
      ['rotate-keys', '--signaling', `${sigA.http},${dead}`, '--timeout', '20s', '--settle', '1s', '--json'],
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

/** rotate-keys' own srtp_key_rotated events (the instances log one per agent as well). */
const rotationEvents = async () => (await events('srtp_key_rotated')).filter((e) => e.metadata?.status);

/** Answers the next rotate-keys push as an agent does. */
async function answerRotation(c: TestClient): Promise<void> {
  const push = await c.next('rotate-keys', 20_000);
  c.send({ type: 'keys-rotated', rotation_id: push.rotation_id });
}

/** Runs `argv` in-process on `clock`, moving the clock until it finishes; returns the result and the
 * fake time it took. */
async function runOnClock(argv: string[], clock: FakeClock, e: Record<string, string>) {
  const t0 = clock.now();
  let finished = false;
  const running = run(argv, { cwd: dir.dir, env: e, clock }).finally(() => {
    finished = true;
  });
  await waitFor(
    async () => {
      await clock.advance(500);
      return finished;
    },
    `${argv.join(' ')} to finish`,
    { timeoutMs: 60_000 },
  );
  return { r: await running, took: clock.now() - t0 };
}

describe('rotate-keys completes the runbook', () => {
  it('step 4: a connection failed after the rotation is counted after the settle time (fake clock) and named', async () => {
    const f1 = new TestClient(sigA.url);
    const f2 = new TestClient(sigA.url);
    try {
      await f1.register('rk-f1');
      await f2.register('rk-f2');
      const clock = new FakeClock(Date.now());
      let finished = false;
      const t0 = clock.now();
      const running = run(['rotate-keys', '--signaling', signaling(), '--timeout', '60s', '--json'], {
        cwd: dir.dir,
        env: env(),
        clock,
      }).finally(() => {
        finished = true;
      });
      await Promise.all([answerRotation(f1), answerRotation(f2)]);
      // After rotating, rk-f1 reports its link to rk-f2 failed (what a re-keyed pair that never came
      // back looks like).
      f1.send({
        type: 'connection-state',
        peer_id: 'rk-f2',
        state: 'failed',
        candidate_type: null,
        rtt_ms: null,
      });
      await waitFor(async () => {
        const c = (await getJson(`${sigA.http}/connections`)).json.connections as any[];
        return c.some((x) => x.agent_id === 'rk-f1' && x.state === 'failed');
      }, 'the failed report to be recorded');
      await waitFor(
        async () => {
          await clock.advance(500);
          return finished;
        },
        'rotate-keys to finish',
        { timeoutMs: 60_000 },
      );
      const r = await running;
      // It waited the runbook's 10 s, on the injected clock.
      expect(clock.now() - t0).toBeGreaterThanOrEqual(10_000);
      expect(r.code).toBe(1);
      const doc = JSON.parse(r.stdout);
      expect(doc).toMatchObject({ ok: false, completed: 5, total: 5, pending: [] });
      expect(doc.stability).toEqual({
        settle_ms: 10_000,
        failed_before: 0,
        failed_connections: 1,
        failed: [{ agent_id: 'rk-f1', peer_id: 'rk-f2' }],
        unreachable: [],
      });
      expect(doc.next_steps).toContain('ifmesh troubleshoot connection-timeout rk-f1 rk-f2');
      // Found by content: the witness orders by timestamp, and fake-clock runs stamp theirs ahead.
      const logged = (await rotationEvents()).filter((e) => e.metadata.failed_connections === 1);
      expect(logged).toHaveLength(1);
      expect(logged[0]!.metadata.status).toBe('incomplete');
    } finally {
      f1.ws.close();
      f2.ws.close();
    }
  });

  it('--emergency without --incident-id declares a SEC- security incident first, and the rotation carries its id', async () => {
    const dry = await run(['rotate-keys', '--signaling', signaling(), '--emergency', '--dry-run', '--json'], {
      cwd: dir.dir,
      env: env(),
    });
    expect(JSON.parse(dry.stdout).plan).toMatchObject({
      emergency: true,
      declare_incident: true,
      force_immediate: true,
      incident_id: null,
      events: ['incident_declared', 'srtp_key_compromise_detected', 'srtp_key_rotated'],
    });
    const r = await run(
      [
        'rotate-keys',
        '--signaling',
        signaling(),
        '--emergency',
        '--timeout',
        '20s',
        '--settle',
        '1s',
        '--json',
      ],
      { cwd: dir.dir, env: env() },
    );
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.incident_declared).toMatch(/^SEC-\d{8}-\d{6}(-\d+)?$/);
    const id = doc.incident_declared as string;
    expect(doc.plan).toMatchObject({ incident_id: id, force_immediate: true, reason: 'security_incident' });
    expect(r.stderr).toContain(`security incident ${id} declared`);
    expect(readIncident(openStateDir(dir.dir), id)).toMatchObject({ id, kind: 'security', status: 'open' });
    expect(doc.next_steps).toContain(`ifmesh incident resolve ${id}`);
    expect((await events('incident_declared')).some((e) => e.incident_id === id)).toBe(true);
    expect((await events('srtp_key_compromise_detected')).filter((e) => e.incident_id === id)).toMatchObject([
      { severity: 'critical', action: 'emergency_key_rotation_initiated' },
    ]);
    expect((await rotationEvents()).filter((e) => e.incident_id === id)).toMatchObject([
      { metadata: { status: 'completed', reason: 'security_incident' } },
    ]);
  });

  it('--if-due: rotates when due, not again until the interval has passed, never when disabled', async () => {
    const state = stateDir(dir.dir, 'periodic');
    const e = { ...env(), SRTP_KEY_ROTATION_INTERVAL_MS: '3600000' };
    const args = [
      'rotate-keys',
      '--if-due',
      '--signaling',
      signaling(),
      '--state-dir',
      state,
      '--settle',
      '1s',
    ];
    const first = await run([...args, '--json'], { cwd: dir.dir, env: e });
    expect(first.code, first.stderr).toBe(0);
    const doc = JSON.parse(first.stdout);
    expect(doc).toMatchObject({
      rotated: true,
      ok: true,
      rotation: { ok: true, plan: { reason: 'scheduled' } },
    });
    const record = readRotationRecord(openStateDir(state))!;
    expect(record).toMatchObject({ ok: true, reason: 'scheduled', completed: 3, total: 3 });
    const status = async () => (await getJson(`${sigA.http}/admin/key-rotation-status`)).json.rotation_id;
    const rotationId = await status();
    const again = await run(args, { cwd: dir.dir, env: e });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`not due: last rotation ${record.at}`);
    expect(await status()).toBe(rotationId);
    const off = await run(args, { cwd: dir.dir, env: { ...e, ENABLE_SRTP_KEY_ROTATION: 'false' } });
    expect(off.code).toBe(0);
    expect(off.stdout).toContain('periodic key rotation is off');
    expect(await status()).toBe(rotationId);
  });

  it('--if-due once the interval has passed (fake clock): an agent that does not answer is told to Slack', async () => {
    const state = stateDir(dir.dir, 'periodic-late');
    const sl = await receiver();
    const quiet = new TestClient(sigB.url);
    try {
      await quiet.register('rk-quiet');
      const e = {
        ...env(),
        SRTP_KEY_ROTATION_INTERVAL_MS: '3600000',
        SLACK_WEBHOOK_URL: `${sl.base}/slack`,
      };
      const args = [
        'rotate-keys',
        '--if-due',
        '--signaling',
        signaling(),
        '--state-dir',
        state,
        '--timeout',
        '10s',
        '--json',
      ];
      // A record from just over an hour ago: due now.
      const { writeRotationRecord } = await import('../../src/ops/keys/schedule.js');
      const clock = new FakeClock(Date.now());
      writeRotationRecord(openStateDir(state), {
        at: new Date(clock.now() - 3_600_001).toISOString(),
        reason: 'scheduled',
        incident_id: null,
        ok: true,
        completed: 3,
        total: 3,
        pending: [],
        failed_connections: 0,
        rotation_ids: ['earlier'],
      });
      const { r } = await runOnClock(args, clock, e);
      expect(r.code).toBe(1);
      const doc = JSON.parse(r.stdout);
      expect(doc).toMatchObject({ rotated: true, ok: false, rotation: { pending: ['rk-quiet'] } });
      expect(doc.needs_human.join('\n')).toContain('no answer from rk-quiet');
      expect(doc.notice).toMatchObject({ status: 'sent', severity: 'P3' });
      expect(sl.got).toHaveLength(1);
      expect(sl.got[0]!.body.text).toContain('ifmesh scheduled key rotation needs a person');
      const fields = Object.fromEntries(
        sl.got[0]!.body.attachments[0].fields.map((f: any) => [f.title, f.value]),
      );
      expect(fields.Summary).toContain('no answer from rk-quiet');
      expect(readRotationRecord(openStateDir(state))).toMatchObject({ ok: false, pending: ['rk-quiet'] });
      expect(existsSync(path.join(state, 'key-rotation.lock'))).toBe(false);
    } finally {
      quiet.ws.close();
    }
  });
});
