// `ifmesh deploy --supervisor systemd` against a real systemd booted in a container
// (test/helpers/systemd-container.ts), reached through IFMESH_SYSTEMD_RUN="nsenter -t PID -a". One
// container and one TLS fleet (a CA and certificates made by openssl here) for every procedure:
// units install and start, systemd restarts a SIGKILLed main process, incident p1 and failover
// signaling restart through systemctl, logs read the journal, a failing canary runs its agent as a
// unit and rolls back through systemctl, rollback restarts agents through systemctl, certs rotate
// restarts the instances one at a time, down stops every tier at once; then `systemd install` hands
// a running `ifmesh up` stack (witness included) to systemd, and preflight checks the service user.
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { requireBinary } from '../helpers/binaries.js';
import { BIN, spawnCli, tempDir, testTmp } from '../helpers/cli.js';
import {
  brokenTurnArgs,
  type DeployDeps,
  deployArgv,
  startDeployDeps,
  writeAgentConfigs,
} from '../helpers/deploy.js';
import { failoverRestartArgv } from '../helpers/failover.js';
import { trackPid } from '../helpers/pids.js';
import { freePort, isStopped } from '../helpers/processes.js';
import { freePortRange } from '../helpers/redis.js';
import { bootSystemd, type SystemdContainer } from '../helpers/systemd-container.js';
import { makeServerCert, makeTlsCerts, type TestCert, writeTlsEnv } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const AGENTS = ['sd-a1', 'sd-a2'];
const { dir, cleanup } = tempDir();
const state = path.join(dir, 'state');
const upState = path.join(dir, 'up-state');
const units = path.join(dir, 'units');
let box: SystemdContainer | undefined;
let deps: DeployDeps | undefined;
let env: Record<string, string> = {};
let base = 0;
let caFile = '';
let fleetCa: TestCert;
let trusting: Agent | undefined;
let uid = 0;

const cli = (argv: string[], timeoutMs = 60_000, stateDir = state) =>
  spawnCli([...argv, '--state-dir', stateDir], { cwd: dir, env, timeoutMs });
const show = (unit: string) =>
  Object.fromEntries(
    box!
      .exec(['systemctl', 'show', unit, '-p', 'ActiveState,MainPID,NRestarts,UnitFileState,User,Result'])
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  ) as Record<string, string>;
const journal = (...unitNames: string[]) =>
  box!.exec(['journalctl', ...unitNames.flatMap((u) => ['-u', u]), '-o', 'cat', '--no-pager']);
// The unit files ifmesh wrote (the container's systemd keeps its own beside them).
const ours = () =>
  readdirSync(units)
    // systemctl enable's own symlink directory aside
    .filter((f) => f.startsWith('webrtc-') && !f.endsWith('.wants'))
    .sort();
const record = (name: string, s = state) => listProcesses(openStateDir(s)).find((p) => p.name === name);
const sig = (port: number) => `webrtc-signaling-server@${port}.service`;
const agentUnit = (id: string) => `webrtc-agent-${id}.service`;
const get = async (url: string) => {
  const r = await request(url, { dispatcher: trusting, headersTimeout: 3_000, bodyTimeout: 3_000 });
  return { status: r.statusCode, json: (await r.body.json().catch(() => undefined)) as any };
};
// Over https, verified against the test's CA.
const healthy = async (port: number) =>
  (await get(`https://127.0.0.1:${port}/health`).catch(() => undefined))?.status === 200;
const registered = async () =>
  ((await get(`https://127.0.0.1:${base}/agents`).catch(() => undefined))?.json?.agents ?? [])
    .map((a: { agent_id: string }) => a.agent_id)
    .sort();
const envFileOf = (unit: string) =>
  readFileSync(path.join(state, `systemd/env/${unit.replace(/\.service$/, '')}.env`), 'utf8');
/** The certificate an instance serves, by fingerprint. */
const served = (port: number) =>
  new Promise<string>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(s.getPeerX509Certificate()!.fingerprint256);
      s.end();
    });
    s.on('error', reject);
  });

beforeAll(async () => {
  requireBinary('redis-server', 'redis-server');
  requireBinary('openssl', 'openssl');
  // The bound directory keeps its host mode inside: the service user must reach its files.
  chmodSync(dir, 0o755);
  mkdirSync(units);
  box = await bootSystemd({
    name: `ifmesh-test-${process.pid}`,
    binds: [dir],
    unitDir: units,
    log: path.join(dir, 'nspawn.log'),
  });
  deps = await startDeployDeps();
  fleetCa = makeTlsCerts(dir).ca;
  caFile = fleetCa.cert;
  trusting = new Agent({ connect: { ca: readFileSync(caFile, 'utf8') } });
  env = {
    ...deps.env,
    // The operator's env file: TLS on every instance, the CA every command and agent verifies with.
    IFMESH_CONFIG: writeTlsEnv(dir),
    IFMESH_SYSTEMD_RUN: box.run,
    AGENT_RECONNECT_MAX_MS: '2000',
    IFMESH_OPERATOR: 'tester',
  };
  await writeAgentConfigs(dir, AGENTS);
  // As an operator would: the project (agent configs, keys 0600, the TLS key) belongs to the
  // service user.
  box.exec(['systemd-sysusers', '--inline', 'u ifmesh - "ifmesh services" /var/lib/ifmesh']);
  uid = Number(box.exec(['id', '-u', 'ifmesh']).trim());
  for (const d of ['keys', 'config', 'config/agents', 'certs']) chownSync(path.join(dir, d), uid, uid);
  for (const d of ['keys', 'config/agents', 'certs'])
    for (const f of readdirSync(path.join(dir, d))) chownSync(path.join(dir, d, f), uid, uid);
  base = await freePortRange(3);
  const r = await cli(
    deployArgv({
      instances: 2,
      base,
      nginxPort: await freePort(),
      state,
      more: ['--supervisor', 'systemd', '--unit-dir', units, '--label', 'v1'],
    }),
    120_000,
  );
  if (r.code !== 0) throw new Error(`deploy failed (${r.code}): ${r.stderr}\n${r.stdout}`);
}, 240_000);

afterAll(async () => {
  if (box) {
    await cli(['down'], 60_000);
    await cli(['down'], 60_000, upState);
  }
  await box?.stop();
  await deps?.stop();
  await trusting?.close();
  cleanup();
}, 180_000);

describe('deploy --supervisor systemd on a real systemd', () => {
  it('writes the units and runs every service as one, under the dedicated user, over TLS', async () => {
    expect(ours()).toEqual([
      'webrtc-agent-sd-a1.service',
      'webrtc-agent-sd-a2.service',
      'webrtc-deploy-redis.service',
      'webrtc-mesh.target',
      'webrtc-signaling-server@.service',
      `webrtc-signaling-server@${base}.service.d`,
      `webrtc-signaling-server@${base + 1}.service.d`,
    ]);
    for (const port of [base, base + 1]) {
      expect(show(sig(port))).toMatchObject({
        ActiveState: 'active',
        UnitFileState: 'enabled',
        User: 'ifmesh',
      });
      expect(await healthy(port)).toBe(true);
    }
    expect(show(agentUnit('sd-a1')).ActiveState).toBe('active');
    const rec = record('deploy-signaling-1')!;
    expect(rec).toMatchObject({ supervisor: 'systemd', unit: sig(base) });
    // systemd runs the instance's own recorded command line, from its drop-in (the runbook's name).
    const cat = box!.exec(['systemctl', 'cat', `webrtc-signaling-server@${base}`]);
    expect(cat).toContain(`webrtc-signaling-server@${base}.service.d/ifmesh.conf`);
    expect(cat).toContain(`ExecStart=${[rec.spec!.command, ...rec.spec!.args].join(' ')}`);
    // The environment file systemd reads holds the instance's spec (its secrets too): 0600.
    const envFile = path.join(state, `systemd/env/webrtc-signaling-server@${base}.env`);
    expect(readFileSync(envFile, 'utf8')).toContain(`IFMESH_CONFIG="${path.join(dir, 'tls.env')}"`);
    expect(statSync(envFile).mode & 0o777).toBe(0o600);
    const status = JSON.parse((await cli(['status', '--json'])).stdout);
    const row = status.components.find((c: { name: string }) => c.name === 'deploy-signaling-2');
    expect(row).toMatchObject({ supervisor: 'systemd', unit: sig(base + 1), healthy: true });
    // Nothing of ifmesh's own supervisor runs: systemd restarts the units.
    expect(record('supervisor')).toBeUndefined();
    await waitFor(
      async () => (await registered()).join() === AGENTS.join(),
      'both agents registered over wss',
      {
        timeoutMs: 30_000,
      },
    );
  });

  it('systemd restarts a main process killed with SIGKILL (NRestarts increases)', async () => {
    const before = show(sig(base));
    box!.exec(['sh', '-c', `kill -9 ${before.MainPID}`]);
    await waitFor(
      () => {
        const s = show(sig(base));
        return (
          s.ActiveState === 'active' &&
          Number(s.NRestarts) > Number(before.NRestarts) &&
          s.MainPID !== before.MainPID
        );
      },
      'systemd to restart the instance',
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    await waitFor(() => healthy(base), 'the restarted instance to answer', {
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    const status = JSON.parse((await cli(['status', '--json'])).stdout);
    const row = status.components.find((c: { name: string }) => c.name === 'deploy-signaling-1');
    expect(row.restarts).toBeGreaterThanOrEqual(1);
  });

  it('incident p1 restarts a stopped instance through systemctl', async () => {
    box!.exec(['systemctl', 'stop', sig(base)]);
    expect(show(sig(base)).ActiveState).toBe('inactive');
    const p1 = await cli(['incident', 'p1', '--json'], 120_000);
    const doc = JSON.parse(p1.stdout);
    const restarted = doc.actions.find((a: { action: string }) => a.action === 'signaling_server_restarted');
    expect(restarted).toMatchObject({ ok: true });
    expect(show(sig(base)).ActiveState).toBe('active');
    expect(await healthy(base)).toBe(true);
    expect(record('deploy-signaling-1')!.restarts).toBe(1);
    await cli(['incident', 'resolve', doc.id]);
  }, 150_000);

  it('failover signaling restarts the instance through systemctl', async () => {
    box!.exec(['systemctl', 'stop', sig(base + 1)]);
    const r = await cli(failoverRestartArgv(`wss://127.0.0.1:${base + 1}`, '5s'), 150_000);
    const doc = JSON.parse(r.stdout);
    expect(doc.plan.signaling_failover).toMatchObject({ instance: 'deploy-signaling-2' });
    expect(show(sig(base + 1)).ActiveState).toBe('active');
    expect(doc.report.signaling_failover.new_pid).toBe(Number(show(sig(base + 1)).MainPID));
    expect(await healthy(base + 1)).toBe(true);
  }, 180_000);

  it('ifmesh logs reads the unit journal', async () => {
    const r = await cli(['logs', 'deploy-signaling-2', '-n', '200']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(String(base + 1));
    const direct = journal(sig(base + 1));
    expect(direct.trim().split('\n').at(-1)).toBe(r.stdout.trim().split('\n').at(-1));
  });
});

describe('preflight on a systemd fleet', () => {
  it('checks that the service user can read the env file, agent configs and keys', async () => {
    const line = async (more: string[]) => {
      const r = await cli(['preflight', '--json', ...more], 120_000);
      return JSON.parse(r.stdout).checks.find((c: { name: string }) => c.name === 'service user');
    };
    // The state records the systemd supervisor: its user (ifmesh) is checked, and reads everything.
    expect(await line([])).toMatchObject({ status: 'ok' });
    // Another user, made with useradd in the container: the 0700 keys directory and the 0600 TLS
    // key (both ifmesh's) stop it, each named with the fix.
    box!.exec(['useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'ifmesh-pf']);
    const other = await line(['--service-user', 'ifmesh-pf']);
    expect(other.status).toBe('fail');
    expect(other.detail).toContain(`ifmesh-pf cannot enter ${path.join(dir, 'keys')}`);
    expect(other.detail).toContain(`ifmesh-pf cannot read ${path.join(dir, 'certs/signaling.key')}`);
    expect(other.hint).toContain(`chown ifmesh-pf: ${path.join(dir, 'certs/signaling.key')}`);
    const missing = await line(['--service-user', 'nobody-here']);
    expect(missing).toMatchObject({
      status: 'fail',
      detail: expect.stringContaining('nobody-here does not exist'),
    });
  }, 200_000);
});

describe('canary and rollback on a systemd fleet', () => {
  it('a failing canary runs its agent as a unit, then rolls it back through systemctl', async () => {
    await waitFor(async () => (await registered()).join() === AGENTS.join(), 'both agents registered', {
      timeoutMs: 30_000,
    });
    const pidsBefore = Object.fromEntries(AGENTS.map((a) => [a, show(agentUnit(a)).MainPID]));
    const turnPort = /:(\d+)$/.exec(deps!.stunUrl)![1]!;
    // Paused (SIGSTOP) right after it moved its agent: the candidate is looked at while it runs.
    const child = spawn(
      process.execPath,
      [
        BIN,
        'canary',
        '--steps',
        '1,100%',
        '--monitor',
        '3s',
        '--interval',
        '300ms',
        '--threshold',
        'rtt_p2p_p95_ms=10000',
        ...brokenTurnArgs(turnPort),
        '--state-dir',
        state,
        '--json',
      ],
      {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', ...testTmp(), ...env, IFMESH_CANARY_PAUSE_AT: 'agents_moved' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    trackPid(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor(() => isStopped(child.pid!), 'the canary runner to pause after moving its agent', {
      timeoutMs: 90_000,
      intervalMs: 20,
    }).catch((err: Error) => {
      throw new Error(`${err.message}; its stderr: ${stderr.slice(-1500)}`);
    });
    const canary = JSON.parse(readFileSync(openStateDir(state).canary, 'utf8'));
    const moved: string[] = canary.plan.phases[0].new_agents;
    expect(moved).toHaveLength(1);
    const id = moved[0]!;
    const unit = agentUnit(id);
    // The candidate runs as the agent's unit: active, its MainPID the record's, its spec the candidate's.
    expect(box!.exec(['systemctl', 'is-active', unit]).trim()).toBe('active');
    const during = show(unit);
    expect(record(`deploy-agent-${id}`)).toMatchObject({
      supervisor: 'systemd',
      unit,
      pid: Number(during.MainPID),
    });
    expect(envFileOf(unit)).toContain('ICE_TRANSPORT_POLICY="relay"');
    expect(
      readFileSync(path.join(state, 'systemd/env', unit.replace(/\.service$/, '.env')), 'utf8'),
    ).toContain('TURN_PASSWORD="wrong-password"');
    process.kill(child.pid!, 'SIGCONT');
    const code = await exited;
    expect(code, stderr).toBe(1);
    const out = JSON.parse(stdout);
    expect(out.state.status).toBe('failed');
    // Rolled back through systemctl: the same unit, a new main process, the stable spec again.
    const after = show(unit);
    expect(after.ActiveState).toBe('active');
    expect(after.MainPID).not.toBe(during.MainPID);
    expect(envFileOf(unit)).not.toContain('ICE_TRANSPORT_POLICY="relay"');
    expect(record(`deploy-agent-${id}`)).toMatchObject({ supervisor: 'systemd', pid: Number(after.MainPID) });
    expect(journal(unit)).toMatch(/Stopping webrtc-agent-[\s\S]*Started webrtc-agent-/);
    // The stable agent was never touched.
    const other = AGENTS.find((a) => a !== id)!;
    expect(show(agentUnit(other)).MainPID).toBe(pidsBefore[other]);
    await waitFor(
      async () => (await registered()).join() === AGENTS.join(),
      'both registered after the rollback',
      {
        timeoutMs: 30_000,
      },
    );
  }, 180_000);

  it('deploy again keeps the fleet under systemd; rollback restarts the agents through systemctl', async () => {
    // No --supervisor: the state's services run as units, so the new release does too.
    const nginxPort = record('deploy-nginx')!.port!;
    const v2 = await cli(
      deployArgv({ instances: 2, base, nginxPort, state, more: ['--label', 'v2'] }),
      120_000,
    );
    expect(v2.code, v2.stderr).toBe(0);
    expect(record('supervisor')).toBeUndefined();
    for (const id of AGENTS) expect(record(`deploy-agent-${id}`)).toMatchObject({ supervisor: 'systemd' });
    const before = Object.fromEntries(AGENTS.map((id) => [id, show(agentUnit(id)).MainPID]));
    const back = await cli(['rollback', '--reason', 'systemd test', '--json'], 120_000);
    expect(back.code, back.stderr).toBe(0);
    expect(JSON.parse(back.stdout)).toMatchObject({ applied: true, outcome: 'ok' });
    for (const id of AGENTS) {
      const s = show(agentUnit(id));
      expect(s.ActiveState).toBe('active');
      expect(s.MainPID).not.toBe(before[id]);
      expect(record(`deploy-agent-${id}`)).toMatchObject({ supervisor: 'systemd', pid: Number(s.MainPID) });
    }
    const plan = JSON.parse(back.stdout).plan;
    expect([plan.from.ref, plan.to.ref]).toEqual(['v2', 'v1']);
    const releases = JSON.parse((await cli(['releases', '--json'])).stdout).releases;
    const outcome = (id: string) => releases.find((x: { id: string }) => x.id === id)?.outcome;
    expect([outcome(plan.from.id), outcome(plan.to.id)]).toEqual(['rolled_back', 'restored']);
    await waitFor(
      async () => (await registered()).join() === AGENTS.join(),
      'both registered after the rollback',
      {
        timeoutMs: 30_000,
      },
    );
  }, 300_000);
});

describe('certs rotate on a systemd fleet', () => {
  it('restarts the TLS instances one at a time through systemctl, each healthy before the next', async () => {
    const cert = path.join(dir, 'certs/signaling.crt');
    const key = path.join(dir, 'certs/signaling.key');
    const pids = [base, base + 1].map((p) => show(sig(p)).MainPID);
    // The fleet's CA issues the new pair (--self-signed-dev is refused on a fleet with a CA of its
    // own), installed by hand as the manual procedure says; rotate restarts the instances onto it.
    const issued = makeServerCert(
      path.join(dir, 'certs'),
      fleetCa,
      'renewed',
      ['localhost', '127.0.0.1'],
      30,
    );
    writeFileSync(key, readFileSync(issued.key));
    writeFileSync(cert, readFileSync(issued.cert));
    const r = await cli(['certs', 'rotate', '--cert', cert, '--key', key, '--json'], 120_000);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.restarts.map((x: { name: string; healthy: boolean }) => [x.name, x.healthy])).toEqual([
      ['deploy-signaling-1', true],
      ['deploy-signaling-2', true],
    ]);
    const fresh = new X509Certificate(readFileSync(cert));
    for (const [i, port] of [base, base + 1].entries()) {
      const s = show(sig(port));
      expect(s.ActiveState).toBe('active');
      expect(s.MainPID).not.toBe(pids[i]);
      expect(await served(port)).toBe(fresh.fingerprint256);
    }
    // The new key kept its owner: the instances (as ifmesh) read it.
    expect(statSync(key).uid).toBe(uid);
    // One at a time: the second instance went down only after the first was back and listening (the
    // last of each in the units' journals: earlier tests stopped and started them too).
    const log = box!
      .exec(['journalctl', '-u', sig(base), '-u', sig(base + 1), '-o', 'cat', '--no-pager'])
      .split('\n');
    const at = (re: RegExp) => log.findLastIndex((l) => re.test(l));
    const stop1 = at(new RegExp(`Stopping webrtc-signaling-server@${base}\\.service`));
    const listen1 = at(new RegExp(`listening on wss://127\\.0\\.0\\.1:${base}\\b`));
    const stop2 = at(new RegExp(`Stopping webrtc-signaling-server@${base + 1}\\.service`));
    const listen2 = at(new RegExp(`listening on wss://127\\.0\\.0\\.1:${base + 1}\\b`));
    expect(
      [stop1, listen1, stop2, listen2].every((i) => i >= 0),
      log.join('\n'),
    ).toBe(true);
    expect(stop1).toBeLessThan(listen1);
    expect(listen1).toBeLessThan(stop2);
    expect(stop2).toBeLessThan(listen2);
  }, 150_000);
});

describe('down on a systemd fleet', () => {
  it('stops each tier of units at once, every unit on SIGTERM; systemd uninstall removes the files', async () => {
    const r = await cli(['down', '--json'], 60_000);
    expect(r.code).toBe(0);
    const all = [
      sig(base),
      sig(base + 1),
      agentUnit('sd-a1'),
      agentUnit('sd-a2'),
      'webrtc-deploy-redis.service',
    ];
    for (const unit of all) {
      const s = show(unit);
      expect(s.ActiveState).toBe('inactive');
      expect(s.UnitFileState).toBe('disabled');
      // Exited on SIGTERM: not killed after TimeoutStopSec ('timeout').
      expect(s.Result, unit).toBe('success');
    }
    const log = box!
      .exec(['journalctl', ...all.flatMap((u) => ['-u', u]), '-o', 'cat', '--no-pager'])
      .split('\n');
    expect(log.join('\n')).not.toMatch(/timed out|Killing process/);
    // The last of each: down's (earlier tests stopped and started these units too).
    const first = (verb: string, unit: string) =>
      log.findLastIndex((l) => l.startsWith(`${verb} ${unit.replace(/\.service$/, '')}`));
    // Tiers in order (agents before the services), each tier's units stopped together: more than one
    // service was told to stop before the first of them had stopped (a stop one unit at a time has
    // exactly one). Not all of them: systemd may reap a quick unit's exit before it starts the last job
    // of the same transaction on a loaded machine.
    const services = [sig(base), sig(base + 1), 'webrtc-deploy-redis.service'];
    const lastAgentStopped = Math.max(
      ...[agentUnit('sd-a1'), agentUnit('sd-a2')].map((u) => first('Stopped', u)),
    );
    for (const u of services) expect(first('Stopping', u), u).toBeGreaterThan(lastAgentStopped);
    const firstStopped = Math.min(...services.map((u) => first('Stopped', u)));
    expect(services.filter((u) => first('Stopping', u) < firstStopped).length).toBeGreaterThanOrEqual(2);
    expect(listProcesses(openStateDir(state)).filter((p) => p.supervisor === 'systemd')).toEqual([]);
    const u = await cli(['systemd', 'uninstall', '--json']);
    expect(u.code).toBe(0);
    expect(ours()).toEqual([]);
    expect(existsSync(path.join(state, 'systemd/env'))).toBe(false);
  }, 90_000);
});

describe('systemd install on a running ifmesh up stack', () => {
  it('replaces the local processes by units (witness included); status shows them; down stops them', async () => {
    // A local lab: plain HTTP, none of the deploy's TLS settings.
    const { IFMESH_CONFIG: _, ...upEnv } = env;
    const up = await spawnCli(
      ['up', '--agents', '2', '--instances', '1', '--max-rtt-p95', '10s', '--state-dir', upState, '--json'],
      {
        cwd: dir,
        env: upEnv,
        timeoutMs: 120_000,
      },
    );
    expect(up.code, up.stderr).toBe(0);
    const local = listProcesses(openStateDir(upState));
    for (const p of local) trackPid(p.pid);
    const witness = local.find((p) => p.role === 'witness')!;
    expect(witness.supervisor ?? 'local').toBe('local');
    const inst = await spawnCli(
      ['systemd', 'install', '--unit-dir', units, '--state-dir', upState, '--json'],
      {
        cwd: dir,
        env: upEnv,
        timeoutMs: 120_000,
      },
    );
    expect(inst.code, inst.stderr + inst.stdout).toBe(0);
    const report = JSON.parse(inst.stdout);
    expect(report.results.filter((x: { ok: boolean }) => !x.ok)).toEqual([]);
    expect(report.results.map((x: { unit: string }) => x.unit)).toContain('webrtc-witness.service');
    // Every local process with a launch spec was stopped (by pid) and runs as a unit now.
    for (const p of local.filter((x) => x.spec && x.role !== 'supervisor')) {
      await waitFor(
        () => !existsSync(`/proc/${p.pid}`) || readFileSync(`/proc/${p.pid}/stat`, 'utf8').includes(') Z'),
        `${p.name}'s local process to be gone`,
        { timeoutMs: 10_000 },
      );
      const rec = record(p.name, upState)!;
      expect(rec.supervisor).toBe('systemd');
      expect(show(rec.unit!).ActiveState).toBe('active');
    }
    expect(show('webrtc-witness.service')).toMatchObject({ ActiveState: 'active', User: 'ifmesh' });
    const status = JSON.parse(
      (await spawnCli(['status', '--state-dir', upState, '--json'], { cwd: dir, env: upEnv })).stdout,
    );
    const rows = status.components.filter((c: { name: string }) =>
      local.some((p) => p.name === c.name && p.spec && p.role !== 'supervisor'),
    );
    expect(rows.length).toBeGreaterThan(3);
    for (const row of rows)
      expect(row, `${row.name}: ${journal(row.unit).split('\n').slice(-15).join('\n')}`).toMatchObject({
        supervisor: 'systemd',
        healthy: true,
      });
    const down = await spawnCli(['down', '--state-dir', upState, '--json'], {
      cwd: dir,
      env: upEnv,
      timeoutMs: 60_000,
    });
    expect(down.code).toBe(0);
    expect(show('webrtc-witness.service').ActiveState).toBe('inactive');
    for (const row of rows) expect(show(row.unit).ActiveState, row.unit).toBe('inactive');
    const u = await spawnCli(['systemd', 'uninstall', '--state-dir', upState, '--json'], {
      cwd: dir,
      env: upEnv,
    });
    expect(u.code).toBe(0);
  }, 300_000);
});
