import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { requireBinary } from '../helpers/binaries.js';
import { spawnCli, tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { writeAgentConfigs } from '../helpers/deploy.js';
import { failoverRestartArgv } from '../helpers/failover.js';
import { freePort } from '../helpers/processes.js';
import { freePortRange } from '../helpers/redis.js';
import { getJson } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';
import { API_KEY, startWitness } from '../helpers/witness.js';

const AGENTS = ['agent-f1', 'agent-f2', 'agent-f3', 'agent-f4'];
const { dir, cleanup } = tempDir();
const state = path.join(dir, 'fleet');
let stop: () => Promise<void> = async () => {};
let env: Record<string, string> = {};
let base = 0;
let nginxPort = 0;
const seen = new Set<number>();

const pidOf = (name: string) => {
  const rec = listProcesses(openStateDir(state)).find((p) => p.name === name);
  if (rec) seen.add(rec.pid);
  return rec?.pid;
};
const cli = (argv: string[], timeoutMs = 60_000) =>
  spawnCli([...argv, '--state-dir', state], { cwd: dir, env, timeoutMs });

beforeAll(async () => {
  requireBinary('redis-server', 'redis-server');
  requireBinary('nginx', 'nginx');
  const turn = await startCoturn();
  const w = await startWitness();
  stop = async () => {
    await w.stop();
    await turn.stop();
  };
  // The operator's configuration, as an env file would give it: the admin API needs its token.
  env = {
    STUN_SERVERS: turn.stunUrl,
    IF_WITNESS_ENDPOINT: w.url,
    IF_WITNESS_API_KEY: API_KEY,
    SIGNALING_ADMIN_TOKEN: 'fleet-admin-token',
    // deploy binds SIGNALING_HOST (default 0.0.0.0): tests stay on loopback.
    SIGNALING_HOST: '127.0.0.1',
    // Agents whose instances were all killed come back within 2 s of a restart, not up to 30 s.
    AGENT_RECONNECT_MAX_MS: '2000',
  };
  await writeAgentConfigs(dir, AGENTS);
  base = await freePortRange(3);
  nginxPort = await freePort();
  // No supervisor: these tests kill instances and watch the procedures bring them back.
  const r = await cli(
    [
      'deploy',
      '--json',
      '--instances',
      '2',
      '--base-port',
      String(base),
      '--nginx-port',
      String(nginxPort),
      '--supervisor',
      'none',
    ],
    90_000,
  );
  expect(r.stderr).toContain('agents registered');
  expect(r.code).toBe(0);
  for (const p of listProcesses(openStateDir(state))) seen.add(p.pid);
}, 120_000);

afterAll(async () => {
  await spawnCli(['down', '--state-dir', state], { cwd: dir, timeoutMs: 30_000 });
  for (const pid of seen) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  await stop();
  cleanup();
});

const agentsOn = async (port: number) =>
  ((await getJson(`http://127.0.0.1:${port}/agents`)).json?.agents ?? []).map(
    (a: { agent_id: string }) => a.agent_id,
  ) as string[];

describe('a deploy-made fleet of 2 instances on Redis with 4 agents', () => {
  it('verify checks both instances and the front door', async () => {
    const r = await cli(['verify', '--json', '--retries', '5', '--interval', '200ms', '--loopback']);
    const report = JSON.parse(r.stdout);
    const health = report.steps.find((s: { name: string }) => s.name === 'signaling_health');
    expect(health.status).toBe('ok');
    for (const u of [
      `http://127.0.0.1:${base}`,
      `http://127.0.0.1:${base + 1}`,
      `http://127.0.0.1:${nginxPort}`,
    ])
      expect(health.detail).toContain(`${u}/health`);
    const agents = report.steps.find((s: { name: string }) => s.name === 'agents_registered');
    expect(agents.data.agents).toBe(4);
  });

  it('with one instance killed: incident p1 sees 1 of 2 up and 4 agents, classifies below P1 and restarts it from its spec', async () => {
    const victim = pidOf('deploy-signaling-1')!;
    const spec = listProcesses(openStateDir(state)).find((p) => p.name === 'deploy-signaling-1')!.spec!;
    process.kill(victim, 'SIGKILL');
    await waitFor(async () => !isAlive(victim), 'the instance to die', { timeoutMs: 5_000 });
    await waitFor(
      async () => (await agentsOn(base + 1).catch(() => [])).length === 4,
      'all four agents registered through the surviving instance',
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    // monitoring check looks at both instances (one of them down) and counts each agent once
    const mc = await cli(['monitoring', 'check', '--json', '--sample-ms', '200']);
    const check = JSON.parse(mc.stdout);
    expect(check.instances.map((i: { url: string }) => i.url).sort()).toEqual(
      [`http://127.0.0.1:${base}`, `http://127.0.0.1:${base + 1}`].sort(),
    );
    expect(check.instances.filter((i: { up: boolean }) => i.up)).toHaveLength(1);

    const p1 = await cli(['incident', 'p1', '--json']);
    const rec = JSON.parse(p1.stdout);
    expect(rec.impact.instances).toHaveLength(2);
    expect(rec.impact.instances.filter((i: { up: boolean }) => i.up)).toHaveLength(1);
    expect(rec.impact.agents_connected).toBe(4);
    expect(rec.classification.level).not.toBe('P1');
    const restarted = rec.actions.find((a: { action: string }) => a.action === 'signaling_server_restarted');
    expect(restarted).toMatchObject({ ok: true });
    expect(restarted.detail).toContain('deploy-signaling-1');
    // Restarted from its recorded spec: same command line, cwd and env file; counted in the record.
    const after = listProcesses(openStateDir(state)).find((p) => p.name === 'deploy-signaling-1')!;
    seen.add(after.pid);
    expect(after.pid).not.toBe(victim);
    expect(after.spec).toEqual(spec);
    expect(after.restarts).toBe(1);
    expect(after.owner).toBe('deploy');
    const resolved = await cli(['incident', 'resolve', rec.id, '--json']);
    expect(resolved.code).toBe(0);
  }, 120_000);

  it('rotate-keys and maintenance daily see both instances; rotate-keys counts each agent once', async () => {
    const rk = await cli(['rotate-keys', '--json', '--timeout', '30s']);
    const rot = JSON.parse(rk.stdout);
    expect(rot.plan.signaling.sort()).toEqual(
      [`http://127.0.0.1:${base}`, `http://127.0.0.1:${base + 1}`].sort(),
    );
    expect(rk.code).toBe(0);
    expect(rot.completed).toBe(4);
    expect(rot.total).toBe(4);
    const daily = await cli(['maintenance', 'daily', '--json']);
    expect(daily.stdout).toContain(`127.0.0.1:${base + 1}`);
    expect(daily.stdout).toContain(`127.0.0.1:${base}`);
    // the 6 pairs of 4 agents, each reported from both ends (the runbook's field) and counted once
    const { health } = JSON.parse(daily.stdout);
    expect(health.total_agents).toBe(4);
    expect(health.connected_pairs).toBe(6);
    expect(health.active_connections).toBe(12);
  }, 120_000);

  it('with both instances killed: incident p1 classifies P1 and restarts both', async () => {
    const victims = ['deploy-signaling-1', 'deploy-signaling-2'].map((n) => pidOf(n)!);
    for (const pid of victims) process.kill(pid, 'SIGKILL');
    await waitFor(() => victims.every((p) => !isAlive(p)), 'both instances to die', { timeoutMs: 5_000 });
    // With no instance to ask, status reads the mode from the records: still Redis, not "standby".
    const st = JSON.parse((await cli(['status', '--json'])).stdout);
    expect(st.signaling_mode).toBe('redis');
    // deploy's witness is the operator's: status says whether it answers.
    expect(st.witness).toEqual({ url: env.IF_WITNESS_ENDPOINT, answers: true });
    const dead = JSON.parse(
      (
        await spawnCli(['status', '--state-dir', state, '--json'], {
          cwd: dir,
          env: { ...env, IF_WITNESS_ENDPOINT: `http://127.0.0.1:${await freePort()}` },
        })
      ).stdout,
    );
    expect(dead.witness).toMatchObject({ answers: false });
    const p1 = await cli(['incident', 'p1', '--json']);
    const rec = JSON.parse(p1.stdout);
    expect(rec.classification.level).toBe('P1');
    const restarts = rec.actions.filter((a: { action: string }) => a.action === 'signaling_server_restarted');
    expect(restarts.map((a: { ok: boolean }) => a.ok)).toEqual([true, true]);
    // nginx had marked both upstreams failed for 30 s (max_fails=3 fail_timeout=30s): the restart
    // path reloads it, so the agents behind it come back now rather than after that window.
    expect(restarts.map((a: { detail: string }) => a.detail).join('\n')).toContain(
      `nginx (pid ${pidOf('deploy-nginx')}) reloaded`,
    );
    for (const n of ['deploy-signaling-1', 'deploy-signaling-2']) expect(isAlive(pidOf(n)!)).toBe(true);
    expect(rec.next_steps.join('\n')).not.toContain('<state>');
    expect(p1.stderr + p1.stdout).not.toContain('<state>');
    await cli(['incident', 'resolve', rec.id]);
    expect(rec.actions.find((a: { action: string }) => a.action === 'signaling_health')).toMatchObject({
      ok: true,
    });
  }, 120_000);

  it('names the log of the instance that does not answer, and `ifmesh logs signaling-2` finds deploy-signaling-2', async () => {
    // A hung instance (stopped, not dead): nothing to restart, and p1 points at its log.
    const hung = pidOf('deploy-signaling-2')!;
    process.kill(hung, 'SIGSTOP');
    let rec: { id: string; next_steps: string[] };
    try {
      rec = JSON.parse((await cli(['incident', 'p1', '--json'])).stdout);
    } finally {
      process.kill(hung, 'SIGCONT');
    }
    await cli(['incident', 'resolve', rec.id]);
    expect(rec.next_steps).toContainEqual(expect.stringMatching(/^ifmesh logs deploy-signaling-2 -n 100 /));
    const logs = await cli(['logs', 'signaling-2', '-n', '200']);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toContain(`listening on ws://127.0.0.1:${base + 1}`);
    const missing = await cli(['logs', 'signaling-9']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('deploy-signaling-1');
  }, 120_000);
});

describe('failover signaling on the deploy-made fleet', () => {
  it('restarts a killed instance from its recorded spec through the restart path, and validates', async () => {
    // The fleet whole again after the earlier kills (agents come back on their reconnection backoff).
    await waitFor(
      async () => {
        const c = (await getJson(`http://127.0.0.1:${base}/connections`).catch(() => undefined))?.json;
        const up = (c?.connections ?? []).filter((x: { state: string }) => x.state === 'connected');
        return (await agentsOn(base).catch(() => [])).length === 4 && up.length === 12;
      },
      'four agents and twelve connected reports',
      { timeoutMs: 90_000, intervalMs: 250 },
    );
    const before = listProcesses(openStateDir(state)).find((p) => p.name === 'deploy-signaling-2')!;
    process.kill(before.pid, 'SIGKILL');
    await waitFor(() => !isAlive(before.pid), 'the instance to die', { timeoutMs: 5_000 });
    // Without --failed, the dead one is found.
    const auto = await cli(['failover', 'signaling', '--dry-run', '--json']);
    expect(auto.code, auto.stderr).toBe(0);
    expect(JSON.parse(auto.stdout).plan.signaling_failover).toMatchObject({
      instance: 'deploy-signaling-2',
      failed: before.url,
      detected: 'process gone',
    });
    // Which instance nginx sends to is not in the records: promote-backup needs it named.
    const promote = await cli(['failover', 'signaling', '--action', 'promote-backup', '--dry-run']);
    expect(promote.code).toBe(2);
    expect(promote.stderr).toContain('--failed');
    // Stabilising long enough for the agents' reconnection backoff (1, 2, 4 s) to bring them back.
    const r = await cli(failoverRestartArgv(`ws://127.0.0.1:${base + 1}`, '10s'), 120_000);
    const doc = JSON.parse(r.stdout);
    expect(doc.plan.signaling_failover).toMatchObject({
      instance: 'deploy-signaling-2',
      command: before.spec!.command,
      args: before.spec!.args,
      cwd: before.spec!.cwd,
    });
    const after = listProcesses(openStateDir(state)).find((p) => p.name === 'deploy-signaling-2')!;
    seen.add(after.pid);
    expect(doc.report.signaling_failover.new_pid).toBe(after.pid);
    expect(isAlive(after.pid)).toBe(true);
    expect(after.spec).toEqual(before.spec);
    expect(after.restarts).toBe((before.restarts ?? 0) + 1);
    const failed = [
      ...(doc.report.steps ?? []).filter((x: { ok: boolean }) => !x.ok),
      ...doc.validation.checks.filter((c: { passed: boolean }) => !c.passed),
    ];
    expect(failed).toEqual([]);
    expect(r.code).toBe(0);
    // Every instance answers again: without --failed there is nothing to fail over.
    const none = await cli(['failover', 'signaling', '--dry-run']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('none failed');
  }, 180_000);
});

describe('a deploy that fails halfway', () => {
  it('with nginx killed: incident p1 restarts the front door from its plan; its log is where `ifmesh logs` looks', async () => {
    const master = pidOf('deploy-nginx')!;
    process.kill(master, 'SIGKILL');
    await waitFor(() => !isAlive(master), 'nginx to die', { timeoutMs: 5_000 });
    const p1 = await cli(['incident', 'p1', '--json']);
    const rec = JSON.parse(p1.stdout);
    await cli(['incident', 'resolve', rec.id]);
    const restart = rec.actions.find(
      (a: { action: string; detail: string }) =>
        a.action === 'signaling_server_restarted' && a.detail.startsWith('deploy-nginx'),
    );
    expect(restart, p1.stdout).toMatchObject({ ok: true });
    const now = pidOf('deploy-nginx')!;
    expect(now).not.toBe(master);
    expect(isAlive(now)).toBe(true);
    expect((await getJson(`http://127.0.0.1:${nginxPort}/health`)).status).toBe(200);
    expect(rec.actions.find((a: { action: string }) => a.action === 'signaling_health')).toMatchObject({
      ok: true,
    });
    // nginx's own log is the fleet's logs/deploy-nginx.log (it was <state>/nginx/error.log, and
    // `ifmesh logs deploy-nginx` found no log), with the restart's reason in it.
    const logs = await cli(['logs', 'deploy-nginx', '-n', '20']);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain('restarted by incident p1 (process gone)');
  }, 120_000);

  it('stops what it started and leaves no record claiming otherwise', async () => {
    const { createServer } = await import('node:net');
    const port = await freePortRange(3);
    // The second instance's port is taken: the first starts, the second cannot.
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(port + 1, '127.0.0.1', () => r()));
    const halfState = path.join(dir, 'half');
    try {
      const r = await spawnCli(
        [
          'deploy',
          '--instances',
          '2',
          '--base-port',
          String(port),
          '--nginx-port',
          String(await freePort()),
          '--state-dir',
          halfState,
        ],
        { cwd: dir, env, timeoutMs: 90_000 },
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('deploy-signaling-2');
      expect(r.stderr).toContain('already in use');
      const left = listProcesses(openStateDir(halfState));
      for (const p of left) seen.add(p.pid);
      expect(left.filter((p) => isAlive(p.pid)).map((p) => p.name)).toEqual([]);
      expect(left).toEqual([]);
    } finally {
      busy.close();
    }
  }, 120_000);
});
