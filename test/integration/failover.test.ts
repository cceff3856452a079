// `ifmesh failover` against real parts: real signaling instances (one a separate process, SIGKILLed),
// real werift agents, a real witness. Scenario E (emergency key rotation) and validate run through
// the CLI; scenario B runs the op on a fake clock so a 5-minute stabilisation window takes no time.

import { readFileSync, writeFileSync } from 'node:fs';
import { Agent as UndiciAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAgent } from '../../src/agent/agent.js';
import { generateKeyPair } from '../../src/crypto/ed25519.js';
import { applyNginx } from '../../src/exec/nginx.js';
import { applyFailover, planPromoteBackup, planSignalingFailover } from '../../src/ops/failover/scenarios.js';
import { Supervisor } from '../../src/ops/fleet/supervisor.js';
import { signalingServeArgs } from '../../src/ops/shared.js';
import { freePort } from '../../src/ops/stack/stack.js';
import { acquireLock } from '../../src/state/lock.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { systemClock } from '../../src/util/clock.js';
import { systemExec } from '../../src/util/exec.js';
import { requireBinary } from '../helpers/binaries.js';
import { BIN, run, tempDir } from '../helpers/cli.js';
import { FakeClock } from '../helpers/clock.js';
import { trackPid } from '../helpers/pids.js';
import { ADMIN, type RunningSignaling, startSignaling } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, post, type RunningWitness, startWitness } from '../helpers/witness.js';

let sig: RunningSignaling;
let witness: RunningWitness;
let dir: { dir: string; cleanup: () => void };
const agents: MeshAgent[] = [];

beforeAll(async () => {
  witness = await startWitness();
  sig = await startSignaling({ instanceId: 'sig-e' });
  dir = tempDir();
  for (const id of ['fo-1', 'fo-2']) {
    const a = new MeshAgent({
      agentId: id,
      identity: generateKeyPair(),
      signalingUrls: [sig.url],
      iceServers: [],
      loopbackOnly: true,
    });
    agents.push(a);
    a.start();
  }
  await agents[0]!.waitForPeers(['fo-2'], 20_000);
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await sig?.stop();
  await witness?.stop();
  dir?.cleanup();
});

const env = () => ({
  SIGNALING_ADMIN_TOKEN: ADMIN,
  IF_WITNESS_ENDPOINT: witness.url,
  IF_WITNESS_API_KEY: API_KEY,
  IFMESH_STATE_DIR: dir.dir,
});

async function query(q: Record<string, unknown>): Promise<Record<string, any>[]> {
  return (await post(`${witness.url}/api/query`, { query: q })).json.results;
}

describe('failover keys (scenario E) and validate', () => {
  it('--dry-run prints the plan and rotates nothing', async () => {
    const r = await run(
      [
        'failover',
        'keys',
        // The latency check's budget is not what these tests are about (a loaded machine).
        '--max-rtt-p95',
        '10s',
        '--signaling',
        sig.url,
        '--incident-id',
        'SEC-9',
        '--id',
        'fo-dry',
        '--dry-run',
        '--json',
      ],
      { cwd: dir.dir, env: env() },
    );
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.dry_run).toBe(true);
    expect(doc.plan).toMatchObject({ failover_id: 'fo-dry', scenario: 'E', keys: { incident_id: 'SEC-9' } });
    expect(await query({ failover_id: 'fo-dry' })).toEqual([]);
    expect(await query({ event: 'srtp_key_rotated' })).toEqual([]);
  });

  it('rotates every agent, logs each step under the failover id, and validates the recovery', async () => {
    const r = await run(
      [
        'failover',
        'keys',
        // The latency check's budget is not what these tests are about (a loaded machine).
        '--max-rtt-p95',
        '10s',
        '--signaling',
        sig.url,
        '--incident-id',
        'SEC-10',
        '--id',
        'fo-e-1',
        '--loopback',
        '--messages',
        '5',
        '--json',
      ],
      { cwd: dir.dir, env: env() },
    );
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.report.keys).toMatchObject({ ok: true, completed: 2, total: 2 });
    expect(doc.validation.passed).toBe(true);
    expect(doc.validation.checks.map((c: { name: string; passed: boolean }) => [c.name, c.passed])).toEqual([
      ['registration', true],
      ['connection_establishment', true],
      ['message_delivery', true],
      ['latency', true],
      ['witness_events', true],
      ['error_rate_trend', true],
      ['recovery_time', true],
    ]);
    // Restored when every agent rotated: held to the guide's < 1 minute for E.
    expect(doc.report.recovery.recovery_ms).toBeGreaterThanOrEqual(0);
    expect(doc.validation.checks.at(-1).data).toMatchObject({
      recovery_ms: doc.report.recovery.recovery_ms,
      target_ms: 60_000,
    });
    const logged = (await query({ failover_id: 'fo-e-1' })).map((e) => e.event);
    expect(logged).toEqual(
      expect.arrayContaining([
        'failover_initiated',
        'failover_step',
        'failover_completed',
        'failover_service_restored',
        'failover_recovery_validated',
      ]),
    );
    expect(await query({ event: 'srtp_key_compromise_detected', incident_id: 'SEC-10' })).toMatchObject([
      { failover_id: 'fo-e-1' },
    ]);
    expect(await query({ event: 'srtp_key_rotated', failover_id: 'fo-e-1' })).toHaveLength(1);
  });

  it('validate alone reads the recovery time from the witness and holds it to the scenario target', async () => {
    const validate = (id: string, scenario: string) =>
      run(
        [
          'failover',
          'validate',
          // The latency check's budget is not what these tests are about (a loaded machine).
          '--max-rtt-p95',
          '10s',
          '--signaling',
          sig.url,
          '--id',
          id,
          '--scenario',
          scenario,
          '--loopback',
          '--messages',
          '5',
          '--json',
        ],
        { cwd: dir.dir, env: env() },
      );
    // fo-e-1 above was restored within E's minute. (The run's verdict also rests on the latency
    // check, which a loaded machine can fail: only the recovery time is this test's business.)
    const ok = await validate('fo-e-1', 'E');
    const measured = (await query({ event: 'failover_service_restored', failover_id: 'fo-e-1' }))[0]!.metadata
      .recovery_ms;
    expect(JSON.parse(ok.stdout).checks.at(-1)).toMatchObject({
      name: 'recovery_time',
      passed: true,
      data: { recovery_ms: measured, target_ms: 60_000 },
    });
    // A recovery recorded at 2 minutes misses E's < 1 minute (though it would meet B's < 5 minutes).
    await post(`${witness.url}/api/log`, {
      event: 'failover_service_restored',
      failover_id: 'fo-slow',
      metadata: { scenario: 'E', recovery_ms: 120_000 },
    });
    const slow = await validate('fo-slow', 'E');
    expect(slow.code).toBe(1);
    expect(JSON.parse(slow.stdout).checks.at(-1)).toMatchObject({
      name: 'recovery_time',
      passed: false,
      detail: 'recovered in 2 min, target < 1 min (the guide: <1 minute): MISSED',
    });
    const asB = await validate('fo-slow', 'B');
    expect(JSON.parse(asB.stdout).checks.at(-1)).toMatchObject({ name: 'recovery_time', passed: true });
  });

  it('validate fails the witness check, exits 1 and logs nothing for a failover that never ran', async () => {
    const r = await run(
      [
        'failover',
        'validate',
        // The latency check's budget is not what these tests are about (a loaded machine).
        '--max-rtt-p95',
        '10s',
        '--signaling',
        sig.url,
        '--id',
        'fo-never',
        '--scenario',
        'c',
        '--loopback',
        '--messages',
        '5',
        '--json',
      ],
      { cwd: dir.dir, env: env() },
    );
    expect(r.code, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.scenario).toBe('C');
    expect(doc.checks.find((c: { name: string }) => c.name === 'witness_events')).toMatchObject({
      passed: false,
    });
    expect(doc.checks.find((c: { name: string }) => c.name === 'registration')).toMatchObject({
      passed: true,
    });
    // Never ran, so never restored: not measured is not a pass.
    expect(doc.checks.find((c: { name: string }) => c.name === 'recovery_time')).toMatchObject({
      passed: false,
      detail: expect.stringMatching(/^no recovery measured for fo-never/),
    });
    expect(await query({ event: 'failover_recovery_validated', failover_id: 'fo-never' })).toEqual([]);
  });

  it('refuses while a deploy holds the lock, naming it; runs under its own lock while an incident halts deploys', async () => {
    const state = tempDir();
    try {
      const e = { ...env(), IFMESH_STATE_DIR: state.dir };
      const args = [
        'failover',
        'keys',
        '--max-rtt-p95',
        '10s',
        '--signaling',
        sig.url,
        '--loopback',
        '--messages',
        '5',
        '--json',
      ];
      const deploy = await acquireLock(openStateDir(state.dir), 'deploy', 'deploy prod-7');
      const refused = await run([...args, '--id', 'fo-locked'], { cwd: state.dir, env: e });
      await deploy.release();
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/deploy lock is held by pid \d+ \(deploy prod-7/);
      expect(await query({ failover_id: 'fo-locked' })).toEqual([]);

      const incident = await acquireLock(openStateDir(state.dir), 'deploy', 'incident INC-3', undefined, {
        persistent: true,
      });
      const r = await run([...args, '--id', 'fo-during-incident'], { cwd: state.dir, env: e });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).report.steps[0]).toMatchObject({ step: 'lock', ok: true });
      // Deployments stay halted: the incident still holds the deploy lock.
      await expect(acquireLock(openStateDir(state.dir), 'deploy', 'deploy prod-8')).rejects.toThrow(
        /incident INC-3/,
      );
      await incident.release();
    } finally {
      state.cleanup();
    }
  });

  it("failover --help and failover list print the guide's A-E table with targets and manual steps", async () => {
    const help = await run(['failover', '--help'], { cwd: dir.dir, env: env() });
    expect(help.code).toBe(0);
    for (const row of [
      /A: TURN Server Failure +Relay servers +Per-peer +5-30s \(auto\), <5m \(manual\) +< 5 min +Often unnecessary/,
      /B: Signaling Server Failure +SDP\/ICE relay +Global +30s-2m \(auto\), <5m \(manual\) +< 5 min +May be required/,
      /C: Network Partition +Mesh connectivity +Regional +30s-17m \(exponential backoff\) +< 17 min +Manual intervention needed/,
      /D: Certificate Expiration +DTLS\/TLS +Global on restart +<1 hour +< 1 h +Required \(automated renewal\)/,
      /E: SRTP Key Compromise +Encryption keys +All peers +<1 minute +< 1 min +Manual incident response/,
    ])
      expect(help.stdout).toMatch(row);
    expect(help.stdout).toContain('B: Signaling Server Failure — ifmesh failover signaling [--failed URL]');
    const list = await run(['failover', 'list'], { cwd: dir.dir, env: env() });
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(
      '  2. monitor the stabilisation (5 minutes): health and failed connections',
    );
    const json = JSON.parse((await run(['failover', 'list', '--json'], { cwd: dir.dir, env: env() })).stdout);
    expect(
      json.scenarios.map((c: { scenario: string; target_ms: number }) => [c.scenario, c.target_ms]),
    ).toEqual([
      ['A', 300_000],
      ['B', 300_000],
      ['C', 1_020_000],
      ['D', 3_600_000],
      ['E', 60_000],
    ]);
  });

  it('an unknown scenario is a usage error', async () => {
    const r = await run(['failover', 'validate', '--id', 'x', '--scenario', 'F'], {
      cwd: dir.dir,
      env: env(),
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown scenario F/);
  });
});

describe('failover signaling (scenario B)', () => {
  it('restarts a SIGKILLed instance from its process record and watches it for the whole window', async () => {
    const state = tempDir();
    const sup = new Supervisor(openStateDir(state.dir), { clock: systemClock, owner: 'test' });
    const port = await freePort();
    writeFileSync(openStateDir(state.dir).adminToken, ADMIN);
    let agent: MeshAgent | undefined;
    try {
      const pid = sup.start({
        name: 'signaling-2',
        role: 'signaling',
        port,
        url: `ws://127.0.0.1:${port}`,
        command: process.execPath,
        args: signalingServeArgs(BIN, {
          port,
          instanceId: 'signaling-2',
          state: openStateDir(state.dir),
          adminTokenFile: openStateDir(state.dir).adminToken,
        }),
      });
      trackPid(pid);
      const health = async () =>
        (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.status === 200;
      await waitFor(health, 'signaling-2 healthy', { timeoutMs: 20_000 });
      agent = new MeshAgent({
        agentId: 'fo-b-1',
        identity: generateKeyPair(),
        signalingUrls: [`ws://127.0.0.1:${port}`],
        iceServers: [],
        loopbackOnly: true,
      });
      agent.start();
      const registered = async () =>
        (
          await fetch(`http://127.0.0.1:${port}/agents`)
            .then((r) => r.json() as Promise<{ agents: { agent_id: string }[] }>)
            .catch(() => ({ agents: [] }))
        ).agents.some((a) => a.agent_id === 'fo-b-1');
      await waitFor(registered, 'fo-b-1 registered', { timeoutMs: 20_000 });

      process.kill(pid, 'SIGKILL');
      await waitFor(async () => !(await health()), 'signaling-2 gone');

      const clock = new FakeClock();
      const plan = planSignalingFailover({
        failoverId: 'fo-b-1',
        state: openStateDir(state.dir),
        signaling: [`ws://127.0.0.1:${port}`],
        failed: `ws://127.0.0.1:${port}`,
        stabilizeMs: 5 * 60_000,
      });
      expect(plan.signaling_failover).toMatchObject({ instance: 'signaling-2', port, action: 'restart' });
      const steps: string[] = [];
      const dispatcher = new UndiciAgent();
      let done = false;
      const applying = applyFailover(
        plan,
        {
          state: openStateDir(state.dir),
          adminToken: ADMIN,
          witness: { url: witness.url, apiKey: API_KEY, state: openStateDir(state.dir) },
          // Fake time: the restart may take as many 100 ms polls as the real start needs.
          timeoutMs: 3_600_000,
          onStep: (l) => steps.push(l),
        },
        {
          clock,
          signal: new AbortController().signal,
          dispatcher,
          exec: systemExec,
        },
      ).finally(() => {
        done = true;
      });
      // Drive the fake clock: 100 ms per poll until the restart is reported, then a probe at a time.
      while (!done) {
        await waitFor(() => done || clock.pending > 0, 'the failover to wait on its clock', {
          timeoutMs: 30_000,
        });
        if (done) break;
        await clock.advance(
          steps.some((s) => s.includes('restart')) ? plan.signaling_failover!.probe_ms : 100,
        );
      }
      const report = await applying;
      await dispatcher.close();
      const newPid = report.signaling_failover!.new_pid!;
      trackPid(newPid);
      expect(report.ok, JSON.stringify(report.steps)).toBe(true);
      expect(newPid).not.toBe(pid);
      expect(report.signaling_failover).toMatchObject({
        old_pid: null,
        probes: 10,
        probe_failures: 0,
        max_failed_connections: 0,
      });
      // Every look counted the failed connections; the witness was asked about the window.
      expect(report.signaling_failover!.failed_connections).toEqual(Array(10).fill(0));
      expect(report.signaling_failover!.witness_failed_events).toBe(0);
      // Restored at the restart, before the 5-minute window: that is the recovery time.
      expect(report.recovery.recovery_ms).not.toBeNull();
      expect(report.recovery.recovery_ms!).toBeLessThan(5 * 60_000);
      // The agent finds its instance again.
      await waitFor(registered, 'fo-b-1 registered again', { timeoutMs: 30_000 });
      const logged = await query({ failover_id: 'fo-b-1' });
      expect(logged.map((e) => e.metadata?.step).filter(Boolean)).toEqual([
        'restart',
        'stabilisation',
        'failed connections',
      ]);
      // The guide's closing event, with what the window measured.
      expect(logged.find((e) => e.event === 'signaling_server_recovery')?.metadata).toMatchObject({
        failed_server: `ws://127.0.0.1:${port}`,
        recovery_action: 'restart',
        instance: 'signaling-2',
        new_pid: newPid,
        stable: true,
        health_probes: 10,
        max_failed_connections: 0,
        witness_failed_events: 0,
      });
    } finally {
      await agent?.stop();
      await sup.stop('signaling-2', 5_000);
      state.cleanup();
    }
  });

  it('promotes the nginx backup when the active instance is SIGKILLed, and watches it through nginx', async () => {
    requireBinary('nginx', 'nginx');
    const state = tempDir();
    const sup = new Supervisor(openStateDir(state.dir), { clock: systemClock, owner: 'test' });
    writeFileSync(openStateDir(state.dir).adminToken, ADMIN);
    const ports: number[] = [];
    try {
      for (const name of ['signaling-1', 'signaling-2']) {
        const port = await freePort();
        ports.push(port);
        trackPid(
          sup.start({
            name,
            role: 'signaling',
            port,
            url: `ws://127.0.0.1:${port}`,
            command: process.execPath,
            args: signalingServeArgs(BIN, { port, instanceId: name, state: openStateDir(state.dir) }),
          }),
        );
      }
      // Both up before nginx looks: an upstream it finds down is skipped for fail_timeout (30 s).
      for (const port of ports)
        await waitFor(
          async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.status === 200,
          `signaling on ${port}`,
          { timeoutMs: 20_000 },
        );
      const front = await freePort();
      const nginxPid = await applyNginx(
        {
          prefix: openStateDir(state.dir).nginx,
          listenPort: front,
          upstreams: [ports[0]!],
          backups: [ports[1]!],
        },
        false,
        { exec: systemExec, clock: systemClock },
      );
      trackPid(nginxPid);
      sup.adopt({ name: 'nginx', role: 'nginx', port: front }, nginxPid);
      const servedBy = async () =>
        (
          (await fetch(`http://127.0.0.1:${front}/health`)
            .then((r) => r.json())
            .catch(() => ({}))) as { instance_id?: string }
        ).instance_id;
      await waitFor(async () => (await servedBy()) === 'signaling-1', 'signaling-1 behind nginx', {
        timeoutMs: 20_000,
      });

      process.kill(sup.running('signaling-1')!, 'SIGKILL');
      const plan = planPromoteBackup({
        failoverId: 'fo-b-2',
        state: openStateDir(state.dir),
        signaling: [`ws://127.0.0.1:${front}`],
        failed: `ws://127.0.0.1:${ports[0]}`,
        stabilizeMs: 5 * 60_000,
      });
      expect(plan.promote_backup).toMatchObject({
        promoted: ports[1],
        after: { upstreams: [ports[1]], backups: [ports[0]] },
      });
      const clock = new FakeClock();
      const dispatcher = new UndiciAgent();
      let done = false;
      const applying = applyFailover(
        plan,
        {
          state: openStateDir(state.dir),
          adminToken: ADMIN,
          witness: { url: witness.url, apiKey: API_KEY, state: openStateDir(state.dir) },
        },
        { clock, signal: new AbortController().signal, dispatcher, exec: systemExec },
      ).finally(() => {
        done = true;
      });
      while (!done) {
        await waitFor(() => done || clock.pending > 0, 'the failover to wait on its clock', {
          timeoutMs: 30_000,
        });
        if (!done) await clock.advance(plan.promote_backup!.probe_ms);
      }
      const report = await applying;
      await dispatcher.close();
      expect(report.ok, JSON.stringify(report.steps)).toBe(true);
      expect(report.promote_backup).toMatchObject({
        promoted: ports[1],
        probes: 10,
        probe_failures: 0,
        max_failed_connections: 0,
      });
      expect(await servedBy()).toBe('signaling-2');
      // nginx's own backup routing already answered from signaling-2; promotion is in its config.
      const conf = readFileSync(plan.promote_backup!.conf, 'utf8');
      expect(conf).toContain(`server 127.0.0.1:${ports[1]} max_fails=3`);
      expect(conf).toContain(`server 127.0.0.1:${ports[0]} backup;`);
      expect(conf).not.toContain(`server 127.0.0.1:${ports[1]} backup;`);
      const logged = await query({ failover_id: 'fo-b-2' });
      expect(logged.map((e) => e.metadata?.step).filter(Boolean)).toEqual([
        'promote backup',
        'stabilisation',
        'failed connections',
      ]);
      expect(logged.find((e) => e.event === 'signaling_server_recovery')?.metadata).toMatchObject({
        failed_server: `ws://127.0.0.1:${ports[0]}`,
        recovery_action: 'promote_backup',
        promoted: `127.0.0.1:${ports[1]}`,
      });
    } finally {
      for (const p of sup.list()) await sup.stop(p.name, 5_000);
      state.cleanup();
    }
  });
});
