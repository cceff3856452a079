import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { requireBinary } from '../helpers/binaries.js';
import { spawnCli, tempDir } from '../helpers/cli.js';
import { startDeployDeps, writeAgentConfigs } from '../helpers/deploy.js';
import { freePort } from '../helpers/processes.js';
import { freePortRange } from '../helpers/redis.js';
import { getJson } from '../helpers/signaling.js';
import { waitFor } from '../helpers/wait.js';

// The agents and keys are shared and read-only; every test uses a state directory of its own.
const { dir, cleanup } = tempDir();
const state = path.join(dir, 'deployed');
let stop: () => Promise<void> = async () => {};
let env: Record<string, string> = {};
let witnessUrl = '';

beforeAll(async () => {
  const deps = await startDeployDeps();
  stop = deps.stop;
  witnessUrl = deps.witnessUrl;
  env = deps.env;
  await writeAgentConfigs(dir, ['agent-d1', 'agent-d2', 'agent-d3']);
});
afterAll(async () => {
  await spawnCli(['down', '--state-dir', state], { cwd: dir, timeoutMs: 30_000 });
  await stop();
  cleanup();
});

const pidsOf = () => listProcesses(openStateDir(state)).map((p) => p.pid);

describe('ifmesh deploy', () => {
  it('prints the plan with --dry-run and touches nothing', async () => {
    const dryState = path.join(dir, 'dry-state');
    const r = await spawnCli(
      ['deploy', '--dry-run', '--json', '--base-port', '18600', '--state-dir', dryState],
      { cwd: dir, env },
    );
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout).plan;
    expect(plan.instances.map((i: { port: number }) => i.port)).toEqual([18600, 18601]);
    expect(plan.agents.map((a: { agent_id: string }) => a.agent_id)).toEqual([
      'agent-d1',
      'agent-d2',
      'agent-d3',
    ]);
    expect(existsSync(dryState)).toBe(false);
    // The config hash covers the configuration, not only the agents and ports: another --set is
    // another hash, the same one the same; a secret's value never enters it.
    const hashOf = async (...set: string[]) =>
      JSON.parse(
        (
          await spawnCli(
            [
              'deploy',
              '--dry-run',
              '--json',
              '--base-port',
              '18600',
              '--state-dir',
              dryState,
              ...set.flatMap((x) => ['--set', x]),
            ],
            { cwd: dir, env },
          )
        ).stdout,
      ).plan.config_hash;
    expect(await hashOf('AGENT_RECONNECT_MAX_MS=15000')).not.toBe(plan.config_hash);
    expect(await hashOf('AGENT_RECONNECT_MAX_MS=15000')).toBe(await hashOf('AGENT_RECONNECT_MAX_MS=15000'));
    expect(await hashOf('TURN_PASSWORD=one')).toBe(await hashOf('TURN_PASSWORD=two'));
    // The human plan says how the instances will share the mesh (Redis is installed for the tests).
    const human = await spawnCli(['deploy', '--dry-run', '--base-port', '18600', '--state-dir', dryState], {
      cwd: dir,
      env,
    });
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(
      /^ {2}mode {7}redis: every instance active, one mesh through redis:\/\/127\.0\.0\.1:18602 \(started as deploy-redis\)$/m,
    );
    expect(existsSync(dryState)).toBe(false);
  });

  it('refuses invalid agent configs with exit 2, naming file and field', async () => {
    const bad = path.join(dir, 'bad-agents');
    mkdirSync(bad, { recursive: true });
    writeFileSync(
      path.join(bad, 'x.json'),
      JSON.stringify({ agent_id: 'x', key: 'missing.key', ice_policy: 'sometimes' }),
    );
    const r = await spawnCli(['deploy', '--agents-dir', 'bad-agents', '--dry-run'], { cwd: dir, env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error: bad-agents/x.json: ice_policy: must be "all" or "relay"');
    // A key file that is not one is caught by the plan, not by the agent's start; no key material
    // is echoed.
    const garbled = path.join(dir, 'garbled-agents');
    mkdirSync(garbled, { recursive: true });
    writeFileSync(path.join(garbled, 'garbage.key'), 'PRIVATE-not-json');
    writeFileSync(path.join(garbled, 'g.json'), JSON.stringify({ agent_id: 'g', key: 'garbage.key' }));
    const g = await spawnCli(['deploy', '--agents-dir', 'garbled-agents', '--dry-run'], { cwd: dir, env });
    expect(g.code).toBe(2);
    expect(g.stderr).toContain('garbled-agents/g.json: key: ');
    expect(g.stderr).toContain('is not an ifmesh key file');
    expect(g.stderr).not.toContain('PRIVATE-not-json');
  });

  it('fails fast while another deploy holds the lock, saying who', async () => {
    const lockState = path.join(dir, 'locked-state');
    mkdirSync(lockState, { recursive: true });
    writeFileSync(
      openStateDir(lockState).lock('deploy'),
      JSON.stringify({
        pid: process.pid,
        purpose: 'deploy other',
        since: new Date().toISOString(),
        token: 'x',
      }),
    );
    const r = await spawnCli(['deploy', '--base-port', '18600', '--state-dir', lockState], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the deploy lock is held by pid ${process.pid} (deploy other`);
    expect(listProcesses(openStateDir(lockState))).toEqual([]);
  });

  it('stops an instance that is not healthy and exits 1 with its last log lines', async () => {
    const { createServer } = await import('node:net');
    const busy = createServer();
    // Below the ephemeral range: the port after it (deploy's Redis) must not be taken meanwhile.
    const port = await freePortRange(2);
    await new Promise<void>((r) => busy.listen(port, '127.0.0.1', () => r()));
    try {
      const busyState = path.join(dir, 'busy-state');
      const r = await spawnCli(
        ['deploy', '--instances', '1', '--base-port', String(port), '--state-dir', busyState],
        { cwd: dir, env, timeoutMs: 60_000 },
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('deploy-signaling-1 on port');
      expect(r.stderr).toContain('already in use');
      expect(readdirSync(path.join(busyState, 'run'))).toEqual([]);
    } finally {
      busy.close();
    }
  });

  it('deploys behind real nginx, records a release, and agents move to the other instance when one is killed', async () => {
    requireBinary('nginx', 'nginx');
    // Two instances and deploy's Redis on consecutive ports, below the ephemeral range so that no
    // outgoing connection (instance 1's to Redis) takes instance 2's port before it starts.
    const base = await freePortRange(3);
    const nginxPort = await freePort();
    const r = await spawnCli(
      [
        'deploy',
        '--json',
        '--instances',
        '2',
        '--base-port',
        String(base),
        '--nginx-port',
        String(nginxPort),
        '--label',
        'v-test',
        // This test kills an instance and watches the agents move: nothing may restart it.
        '--supervisor',
        'none',
        // What the operator --sets reaches the agents too, a secret through the secrets file only.
        '--set',
        'AGENT_RECONNECT_MAX_MS=15000',
        '--set',
        'TURN_PASSWORD=deploy-set-secret',
        '--state-dir',
        state,
      ],
      { cwd: dir, env, timeoutMs: 60_000 },
    );
    expect(r.stderr).toContain('agents registered');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    const agentRec = listProcesses(openStateDir(state)).find((p) => p.name === 'deploy-agent-agent-d1')!;
    expect(agentRec.spec!.env.AGENT_RECONNECT_MAX_MS).toBe('15000');
    expect(agentRec.spec!.secret_env).toContain('TURN_PASSWORD');
    expect(readFileSync(`/proc/${agentRec.pid}/environ`, 'utf8').split('\0')).toEqual(
      expect.arrayContaining(['AGENT_RECONNECT_MAX_MS=15000', 'TURN_PASSWORD=deploy-set-secret']),
    );
    for (const f of [...readdirSync(path.join(state, 'run')), ...readdirSync(path.join(state, 'releases'))])
      if (f.endsWith('.json'))
        expect(
          readFileSync(path.join(state, f.startsWith('deploy-') ? 'run' : 'releases', f), 'utf8'),
        ).not.toContain('deploy-set-secret');
    expect(report.registered).toEqual(['agent-d1', 'agent-d2', 'agent-d3']);
    expect(report.plan.agents_connect_to).toEqual([`ws://127.0.0.1:${nginxPort}`]);
    const conf = readFileSync(report.plan.nginx.conf, 'utf8');
    expect(conf).toContain('least_conn;');
    // redis-server is installed: both instances active (no backup), sharing one mesh through Redis.
    requireBinary('redis-server', 'redis-server');
    expect(report.plan.signaling_mode).toBe('redis');
    expect(report.plan.redis).toEqual({ url: `redis://127.0.0.1:${base + 2}`, start: true });
    expect(conf).toContain(`server 127.0.0.1:${base + 1} max_fails=3 fail_timeout=30s;`);
    expect(conf).not.toContain('backup');
    const cluster = (await getJson(`http://127.0.0.1:${nginxPort}/agents`)).json.agents;
    expect(cluster.map((a: { agent_id: string }) => a.agent_id).sort()).toEqual([
      'agent-d1',
      'agent-d2',
      'agent-d3',
    ]);
    expect(conf).toContain(`server 127.0.0.1:${base} max_fails=3 fail_timeout=30s;`);
    expect(conf).toContain('proxy_set_header Upgrade $http_upgrade;');
    expect(conf).toContain('proxy_read_timeout 3600s;');
    const current = readFileSync(path.join(state, 'releases/current'), 'utf8').trim();
    expect(JSON.parse(readFileSync(path.join(state, 'releases', `${current}.json`), 'utf8'))).toMatchObject({
      ref: 'v-test',
      deployment_id: report.plan.deployment_id,
    });
    // the deployment was announced to the witness
    const q = await spawnCli(
      [
        'witness',
        'query',
        '--event',
        'webrtc_deployment_started',
        '--deployment',
        report.plan.deployment_id,
        '--witness',
        witnessUrl,
        '--json',
      ],
      { cwd: dir },
    );
    expect(JSON.parse(q.stdout).results[0]).toMatchObject({
      deployment_id: report.plan.deployment_id,
      metadata: { release: 'v-test', instances: 2, agents: 3 },
    });
    // a second deploy reloads the running nginx and keeps both releases
    const again = await spawnCli(
      [
        'deploy',
        '--instances',
        '2',
        '--base-port',
        String(base),
        '--nginx-port',
        String(nginxPort),
        '--label',
        'v-test-2',
        '--supervisor',
        'none',
        '--state-dir',
        state,
      ],
      { cwd: dir, env, timeoutMs: 60_000 },
    );
    expect(again.code).toBe(0);
    // Without a terminal the steps are lines of the human output, on stdout.
    expect(again.stdout).toContain('nginx reloaded');
    expect(readdirSync(path.join(state, 'releases')).filter((f) => f.endsWith('.json'))).toHaveLength(2);

    // where is everyone? kill the instance holding the most agents
    // The agents each instance holds itself (with Redis, /agents lists the whole cluster's).
    const on = async (port: number) =>
      ((await getJson(`http://127.0.0.1:${port}/agents`)).json?.agents ?? [])
        .filter((a: { instance_id: string }) => a.instance_id === `deploy-signaling-${port - base + 1}`)
        .map((a: { agent_id: string }) => a.agent_id);
    const ports = [base, base + 1];
    const counts = await Promise.all(ports.map(on));
    const victim = counts[0]!.length >= counts[1]!.length ? 0 : 1;
    const survivor = ports[1 - victim]!;
    // status sees what deploy started, each with its role
    const st = await spawnCli(['status', '--state-dir', state, '--json'], { cwd: dir });
    expect(st.code).toBe(0);
    expect(JSON.parse(st.stdout).signaling_mode).toBe('redis');
    expect(
      JSON.parse(st.stdout).components.map(
        (c: { name: string; role: string; owner: string; healthy: boolean }) => [
          c.name,
          c.role,
          c.owner,
          c.healthy,
        ],
      ),
    ).toEqual([
      ['deploy-redis', 'redis', 'deploy', true],
      ['deploy-signaling-1', 'signaling', 'deploy', true],
      ['deploy-signaling-2', 'signaling', 'deploy', true],
      ['deploy-nginx', 'nginx', 'deploy', true],
      ['deploy-agent-agent-d1', 'agents', 'deploy', true],
      ['deploy-agent-agent-d2', 'agents', 'deploy', true],
      ['deploy-agent-agent-d3', 'agents', 'deploy', true],
    ]);

    const victimPid = listProcesses(openStateDir(state)).find(
      (p) => p.name === `deploy-signaling-${victim + 1}`,
    )!.pid;
    process.kill(victimPid, 'SIGKILL');
    let moved: string[] = [];
    await waitFor(
      async () => {
        moved = await on(survivor);
        return moved.length === 3;
      },
      'all three agents on the surviving instance',
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    expect(moved.sort()).toEqual(['agent-d1', 'agent-d2', 'agent-d3']);

    const before = pidsOf();
    // A dry run names the order and what runs now, and stops nothing.
    const plan = await spawnCli(['down', '--state-dir', state, '--dry-run', '--json'], {
      cwd: dir,
      timeoutMs: 30_000,
    });
    expect(plan.code).toBe(0);
    const steps = (JSON.parse(plan.stdout) as { plan: { steps: { name: string; pid: number | null }[][] } })
      .plan.steps;
    // Agents before the services they use; the instance that was killed is only forgotten.
    expect(steps[0]!.map((x) => x.name)).toEqual([
      'deploy-agent-agent-d1',
      'deploy-agent-agent-d2',
      'deploy-agent-agent-d3',
    ]);
    expect(steps.flat().find((x) => x.name === `deploy-signaling-${victim + 1}`)!.pid).toBeNull();
    const running = steps.flat().filter((x) => x.pid !== null);
    expect(running).toHaveLength(6);
    for (const x of running) expect(isAlive(x.pid!), x.name).toBe(true);
    const down = await spawnCli(['down', '--state-dir', state, '--json'], { cwd: dir, timeoutMs: 60_000 });
    expect(down.code).toBe(0);
    expect(JSON.parse(down.stdout)).toMatchObject({
      not_running: ['deploy-signaling-' + String(victim + 1)],
      failed: [],
    });
    // the survivor, nginx, three agents and deploy-redis
    expect(JSON.parse(down.stdout).stopped).toHaveLength(6);
    for (const pid of before) expect(isAlive(pid)).toBe(false);
  }, 120_000);

  it("keeps a deploy-made fleet running from its env file: the supervisor restarts a killed agent and tells the file's witness", async () => {
    // Only the env file names the witness (no environment variable): what the supervisor reads.
    const envFile = path.join(dir, 'sup-fleet.env');
    writeFileSync(
      envFile,
      `${Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n')}\n`,
    );
    const st = path.join(dir, 'sup-fleet');
    const base = await freePortRange(2);
    const deployArgs = [
      'deploy',
      '--config',
      envFile,
      '--instances',
      '1',
      '--base-port',
      String(base),
      '--nginx-port',
      String(await freePort()),
      '--state-dir',
      st,
    ];
    // The operator's shell holds the witness's admin key (for a cleanup, say): no process the deploy
    // starts is given it, so none may inherit it either, at the start or at a restart.
    const r = await spawnCli([...deployArgs, '--json'], {
      cwd: dir,
      env: { IF_WITNESS_ADMIN_KEY: 'shell-admin-key' },
      timeoutMs: 60_000,
    });
    const holdsAdminKey = () =>
      listProcesses(openStateDir(st))
        .filter(
          (p) => ['agents', 'signaling', 'supervisor', 'redis', 'nginx'].includes(p.role) && isAlive(p.pid),
        )
        .filter((p) =>
          readFileSync(`/proc/${p.pid}/environ`, 'utf8')
            .split('\0')
            .some((l) => l.startsWith('IF_WITNESS_ADMIN_KEY=')),
        )
        .map((p) => p.name);
    try {
      expect(r.code, r.stderr).toBe(0);
      expect(holdsAdminKey()).toEqual([]);
      // Later commands read the fleet's env file without being told: status looks at its witness.
      const st0 = await spawnCli(['status', '--state-dir', st, '--json'], { cwd: dir });
      expect(JSON.parse(st0.stdout).witness, st0.stderr).toEqual({ url: witnessUrl, answers: true });
      // So do the commands that read a config and a state without the fleet view (monitoring,
      // canary, rollback, top): monitoring check measures the file's witness, not the default.
      const mon = await spawnCli(['monitoring', 'check', '--state-dir', st, '--json'], { cwd: dir });
      expect(mon.stdout).toContain(new URL(witnessUrl).host);
      expect(mon.stdout).not.toContain('127.0.0.1:8080');
      const victim = listProcesses(openStateDir(st)).find((p) => p.name === 'deploy-agent-agent-d1')!.pid;
      process.kill(victim, 'SIGKILL');
      // agent-d1's service_restarted events in the witness.
      const restartsLogged = async () => {
        const q = await spawnCli(
          ['witness', 'query', '--event', 'service_restarted', '--witness', witnessUrl, '--json'],
          { cwd: dir },
        );
        return q.code === 0
          ? JSON.parse(q.stdout).results.filter(
              (e: { metadata: { service: string } }) => e.metadata.service === 'deploy-agent-agent-d1',
            ).length
          : 0;
      };
      await waitFor(
        async () => (await restartsLogged()) === 1,
        'service_restarted for agent-d1 in the witness',
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      // So does witness query, without --witness: the fleet's witness, from its env file.
      const q = await spawnCli(
        ['witness', 'query', '--event', 'service_restarted', '--state-dir', st, '--json'],
        {
          cwd: dir,
        },
      );
      expect(q.code, q.stderr).toBe(0);
      expect(JSON.parse(q.stdout).results.length).toBeGreaterThan(0);
      const rec = listProcesses(openStateDir(st)).find((p) => p.name === 'deploy-agent-agent-d1')!;
      expect(rec.pid).not.toBe(victim);
      expect(rec.restarts).toBe(1);
      expect(holdsAdminKey()).toEqual([]);

      // The supervisor killed: status says how to bring it back, and that (without --config) starts
      // it on the configuration it ran with: the next restart reaches the same witness.
      const supPid = listProcesses(openStateDir(st)).find((p) => p.name === 'supervisor')!.pid;
      process.kill(supPid, 'SIGKILL');
      await waitFor(() => !isAlive(supPid), 'the supervisor to die');
      const st1 = await spawnCli(['status', '--state-dir', st], { cwd: dir, env: { NO_COLOR: '1' } });
      expect(st1.stdout).toContain(
        `nothing restarts a dead service now: ifmesh supervise --detach --state-dir ${st}`,
      );
      // So does incident p1, which is what an operator runs when a service stays dead.
      const p1 = await spawnCli(['incident', 'p1', '--json', '--state-dir', st], { cwd: dir });
      const inc = JSON.parse(p1.stdout);
      await spawnCli(['incident', 'resolve', inc.id, '--state-dir', st], { cwd: dir });
      expect(inc.next_steps).toContain(
        `the supervisor is not running, so nothing restarts a service that dies: ifmesh supervise --detach --state-dir ${st}`,
      );
      const det = await spawnCli(['supervise', '--detach', '--state-dir', st, '--json'], { cwd: dir });
      expect(det.code, det.stderr).toBe(0);
      expect(JSON.parse(det.stdout)).toMatchObject({ name: 'supervisor', ok: true, already_running: false });
      const again = listProcesses(openStateDir(st)).find((p) => p.name === 'deploy-agent-agent-d1')!.pid;
      process.kill(again, 'SIGKILL');
      await waitFor(
        async () => (await restartsLogged()) === 2,
        'a second service_restarted for agent-d1, from the detached supervisor',
        { timeoutMs: 30_000, intervalMs: 250 },
      );

      // A deploy on another configuration replaces the supervisor, which would otherwise restart
      // services on the old one.
      const before = listProcesses(openStateDir(st)).find((p) => p.name === 'supervisor')!.pid;
      const again2 = await spawnCli([...deployArgs, '--set', 'AGENT_RECONNECT_MAX_MS=12000'], {
        cwd: dir,
        timeoutMs: 60_000,
      });
      expect(again2.code, again2.stderr).toBe(0);
      const sup2 = listProcesses(openStateDir(st)).find((p) => p.name === 'supervisor')!;
      expect(sup2.pid).not.toBe(before);
      expect(sup2.spec!.env.AGENT_RECONNECT_MAX_MS).toBe('12000');
    } finally {
      await spawnCli(['down', '--state-dir', st], { cwd: dir, timeoutMs: 60_000 });
    }
  }, 120_000);
});
