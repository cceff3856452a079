// `ifmesh deploy --supervisor systemd` against a real systemd booted in a container
// (test/helpers/systemd-container.ts), reached through IFMESH_SYSTEMD_RUN="nsenter -t PID -a": units
// install and start, systemd restarts a SIGKILLed main process, incident p1 and failover signaling
// restart through systemctl, logs read the journal, down stops and disables the units.
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { requireBinary } from '../helpers/binaries.js';
import { spawnCli, tempDir } from '../helpers/cli.js';
import { type DeployDeps, deployArgv, startDeployDeps, writeAgentConfigs } from '../helpers/deploy.js';
import { freePort } from '../helpers/processes.js';
import { freePortRange } from '../helpers/redis.js';
import { getJson } from '../helpers/signaling.js';
import { bootSystemd, type SystemdContainer, unitFiles } from '../helpers/systemd-container.js';
import { waitFor } from '../helpers/wait.js';

const AGENTS = ['sd-a1', 'sd-a2'];
const { dir, cleanup } = tempDir();
const state = path.join(dir, 'state');
const units = path.join(dir, 'units');
let box: SystemdContainer | undefined;
let deps: DeployDeps | undefined;
let env: Record<string, string> = {};
let base = 0;

const cli = (argv: string[], timeoutMs = 60_000) =>
  spawnCli([...argv, '--state-dir', state], { cwd: dir, env, timeoutMs });
const show = (unit: string) =>
  Object.fromEntries(
    box!
      .exec(['systemctl', 'show', unit, '-p', 'ActiveState,MainPID,NRestarts,UnitFileState,User'])
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  ) as Record<string, string>;
// The unit files ifmesh wrote (the container's systemd keeps its own beside them).
const ours = () =>
  unitFiles(units)
    .filter((f) => f.startsWith('webrtc-'))
    .sort();
const record = (name: string) => listProcesses(openStateDir(state)).find((p) => p.name === name);
const healthy = async (port: number) =>
  (await getJson(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.status === 200;

beforeAll(async () => {
  requireBinary('redis-server', 'redis-server');
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
  env = { ...deps.env, IFMESH_SYSTEMD_RUN: box.run, AGENT_RECONNECT_MAX_MS: '2000' };
  await writeAgentConfigs(dir, AGENTS);
  // As an operator would: the project (agent configs, keys 0600) belongs to the service user.
  box.exec(['systemd-sysusers', '--inline', 'u ifmesh - "ifmesh services" /var/lib/ifmesh']);
  const uid = Number(box.exec(['id', '-u', 'ifmesh']).trim());
  for (const d of ['keys', 'config', 'config/agents']) chownSync(path.join(dir, d), uid, uid);
  for (const d of ['keys', 'config/agents'])
    for (const f of readdirSync(path.join(dir, d))) chownSync(path.join(dir, d, f), uid, uid);
  base = await freePortRange(3);
  const r = await cli(
    deployArgv({
      instances: 2,
      base,
      nginxPort: await freePort(),
      state,
      more: ['--supervisor', 'systemd', '--unit-dir', units],
    }),
    120_000,
  );
  if (r.code !== 0) throw new Error(`deploy failed (${r.code}): ${r.stderr}\n${r.stdout}`);
}, 240_000);

afterAll(async () => {
  if (box) await cli(['down'], 60_000);
  await box?.stop();
  await deps?.stop();
  cleanup();
}, 120_000);

describe('deploy --supervisor systemd on a real systemd', () => {
  it('writes the units and runs every service as one, under the dedicated user', async () => {
    expect(ours()).toEqual([
      'webrtc-agent-sd-a1.service',
      'webrtc-agent-sd-a2.service',
      'webrtc-deploy-redis.service',
      'webrtc-mesh.target',
      'webrtc-signaling-server@.service',
    ]);
    for (const port of [base, base + 1]) {
      const s = show(`webrtc-signaling-server@${port}.service`);
      expect(s).toMatchObject({ ActiveState: 'active', UnitFileState: 'enabled', User: 'ifmesh' });
      expect(await healthy(port)).toBe(true);
    }
    expect(show('webrtc-agent-sd-a1.service').ActiveState).toBe('active');
    const rec = record('deploy-signaling-1')!;
    expect(rec).toMatchObject({ supervisor: 'systemd', unit: `webrtc-signaling-server@${base}.service` });
    // The environment file systemd reads holds the instance's spec (its secrets too): 0600.
    const envFile = path.join(state, `systemd/env/webrtc-signaling-server@${base}.env`);
    expect(readFileSync(envFile, 'utf8')).toContain('IFMESH_UNIT_INSTANCE_ID="deploy-signaling-1"');
    const st = await import('node:fs').then((fs) => fs.statSync(envFile));
    expect(st.mode & 0o777).toBe(0o600);
    const status = JSON.parse((await cli(['status', '--json'])).stdout);
    const row = status.components.find((c: { name: string }) => c.name === 'deploy-signaling-2');
    expect(row).toMatchObject({
      supervisor: 'systemd',
      unit: `webrtc-signaling-server@${base + 1}.service`,
      healthy: true,
    });
    // Nothing of ifmesh's own supervisor runs: systemd restarts the units.
    expect(record('supervisor')).toBeUndefined();
  });

  it('systemd restarts a main process killed with SIGKILL (NRestarts increases)', async () => {
    const unit = `webrtc-signaling-server@${base}.service`;
    const before = show(unit);
    box!.exec(['sh', '-c', `kill -9 ${before.MainPID}`]);
    await waitFor(
      () => {
        const s = show(unit);
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
    const unit = `webrtc-signaling-server@${base}.service`;
    box!.exec(['systemctl', 'stop', unit]);
    expect(show(unit).ActiveState).toBe('inactive');
    const p1 = await cli(['incident', 'p1', '--json'], 120_000);
    const doc = JSON.parse(p1.stdout);
    const restarted = doc.actions.find((a: { action: string }) => a.action === 'signaling_server_restarted');
    expect(restarted).toMatchObject({ ok: true });
    expect(show(unit).ActiveState).toBe('active');
    expect(await healthy(base)).toBe(true);
    expect(record('deploy-signaling-1')!.restarts).toBe(1);
    await cli(['incident', 'resolve', doc.id]);
  }, 150_000);

  it('failover signaling restarts the instance through systemctl', async () => {
    const unit = `webrtc-signaling-server@${base + 1}.service`;
    box!.exec(['systemctl', 'stop', unit]);
    const r = await cli(
      [
        'failover',
        'signaling',
        '--max-rtt-p95',
        '10s',
        '--failed',
        `ws://127.0.0.1:${base + 1}`,
        '--action',
        'restart',
        '--stabilize',
        '5s',
        '--loopback',
        '--json',
      ],
      150_000,
    );
    const doc = JSON.parse(r.stdout);
    expect(doc.plan.signaling_failover).toMatchObject({ instance: 'deploy-signaling-2' });
    expect(show(unit).ActiveState).toBe('active');
    expect(doc.report.signaling_failover.new_pid).toBe(Number(show(unit).MainPID));
    expect(await healthy(base + 1)).toBe(true);
  }, 180_000);

  it('ifmesh logs reads the unit journal', async () => {
    const r = await cli(['logs', 'deploy-signaling-2', '-n', '200']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(String(base + 1));
    const direct = box!.exec([
      'journalctl',
      '-u',
      `webrtc-signaling-server@${base + 1}.service`,
      '-o',
      'cat',
      '--no-pager',
    ]);
    expect(direct.trim().split('\n').at(-1)).toBe(r.stdout.trim().split('\n').at(-1));
  });

  it('down stops and disables the units; systemd uninstall removes the unit files', async () => {
    const r = await cli(['down', '--json'], 60_000);
    expect(r.code).toBe(0);
    for (const unit of [
      `webrtc-signaling-server@${base}.service`,
      'webrtc-agent-sd-a1.service',
      'webrtc-deploy-redis.service',
    ]) {
      const s = show(unit);
      expect(s.ActiveState).toBe('inactive');
      expect(s.UnitFileState).toBe('disabled');
    }
    expect(await healthy(base)).toBe(false);
    expect(listProcesses(openStateDir(state)).filter((p) => p.supervisor === 'systemd')).toEqual([]);
    const u = await cli(['systemd', 'uninstall', '--json']);
    expect(u.code).toBe(0);
    expect(ours()).toEqual([]);
    expect(existsSync(path.join(state, 'systemd/env'))).toBe(false);
  }, 90_000);
});
