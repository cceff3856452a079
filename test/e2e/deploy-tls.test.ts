// Issue 20, point 1: TLS end to end. A private CA and a server certificate made by openssl here; the
// env file names them; deploy serves https/wss on every instance and nginx, reads them over https
// verified against the CA, and agents connect through wss://. Commands verify with --ca, and one
// without it fails with one line about certificate verification.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { requireBinary } from '../helpers/binaries.js';
import { spawnCli, tempDir } from '../helpers/cli.js';
import { deployArgv, startDeployDeps, writeAgentConfigs } from '../helpers/deploy.js';
import { freePort } from '../helpers/processes.js';
import { freePortRange } from '../helpers/redis.js';
import { makeCert, makeTlsCerts, servedFingerprint, writeTlsEnv } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const { dir, cleanup } = tempDir();
const state = path.join(dir, 'tls-state');
const AGENTS = ['agent-t1', 'agent-t2'];
let stop: () => Promise<void> = async () => {};
let env: Record<string, string> = {};
let caFile = '';
let trusting: Agent;

beforeAll(async () => {
  requireBinary('openssl', 'openssl');
  const deps = await startDeployDeps();
  stop = deps.stop;
  env = deps.env;
  caFile = makeTlsCerts(dir).ca.cert;
  trusting = new Agent({ connect: { ca: readFileSync(caFile, 'utf8') } });
  await writeAgentConfigs(dir, AGENTS);
});
afterAll(async () => {
  await spawnCli(['down', '--state-dir', state], { cwd: dir, timeoutMs: 30_000 });
  await trusting?.close();
  await stop();
  cleanup();
});

const get = async (url: string) => {
  const r = await request(url, { dispatcher: trusting, headersTimeout: 5_000, bodyTimeout: 5_000 });
  return { status: r.statusCode, text: await r.body.text() };
};

describe('ifmesh deploy with TLS', () => {
  it('serves https/wss on every instance and nginx, verified against the configured CA', async () => {
    requireBinary('nginx', 'nginx');
    requireBinary('redis-server', 'redis-server');
    const base = await freePortRange(3);
    const nginxPort = await freePort();
    // The env file an operator writes: relative paths are relative to it; not the default path: the
    // later commands find it through the fleet's records, or are given another (blind.env below).
    writeTlsEnv(dir, [`SIGNALING_PUBLIC_URL=wss://localhost:${nginxPort}`]);
    const deploy = (release: string) =>
      spawnCli(
        deployArgv({
          instances: 2,
          base,
          nginxPort,
          state,
          more: ['--config', 'tls.env', '--label', release],
        }),
        { cwd: dir, env, timeoutMs: 90_000 },
      );
    const r = await deploy('v1');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.registered).toEqual(AGENTS);
    expect(report.plan.instances.map((i: { url: string }) => i.url)).toEqual([
      `wss://127.0.0.1:${base}`,
      `wss://127.0.0.1:${base + 1}`,
    ]);
    expect(report.plan.agents_connect_to).toEqual([`wss://localhost:${nginxPort}`]);
    expect(report.plan.endpoints).toMatchObject({ bind_host: '127.0.0.1', scheme: 'wss' });
    expect(report.plan.endpoints.tls.ca).toBe(caFile);

    // nginx: TLS on its listener, the certificate, server_name, /health and the runbook's timeouts.
    const conf = readFileSync(report.plan.nginx.conf, 'utf8');
    expect(conf).toContain(`listen 127.0.0.1:${nginxPort} ssl;`);
    expect(conf).toContain('server_name localhost;');
    expect(conf).toContain(`ssl_certificate ${path.join(dir, 'certs/signaling.crt')};`);
    expect(conf).toContain(`ssl_certificate_key ${path.join(dir, 'certs/signaling.key')};`);
    expect(conf).toContain('location = /health {');
    expect(conf).toContain('proxy_pass https://ifmesh_signaling;');
    expect(conf).toContain('proxy_ssl_verify on;');
    expect(conf).toContain(`proxy_ssl_trusted_certificate ${caFile};`);
    for (const t of ['proxy_connect_timeout 5s;', 'proxy_read_timeout 3600s;', 'proxy_send_timeout 3600s;'])
      expect(conf).toContain(t);

    // /health over https through each instance and through nginx (by IP and by its public name).
    for (const url of [
      `https://127.0.0.1:${base}`,
      `https://127.0.0.1:${base + 1}`,
      `https://127.0.0.1:${nginxPort}`,
      `https://localhost:${nginxPort}`,
    ]) {
      const h = await get(`${url}/health`);
      expect(h.status, url).toBe(200);
      expect(h.text).toContain('"status":"ok"');
    }
    // An instance speaks nothing but TLS.
    await expect(request(`http://127.0.0.1:${base}/health`, { headersTimeout: 2_000 })).rejects.toThrow();

    // The agents registered over wss (the instances serve nothing else), seen through nginx.
    const agents = JSON.parse((await get(`https://localhost:${nginxPort}/agents`)).text).agents;
    expect(agents.map((a: { agent_id: string }) => a.agent_id).sort()).toEqual(AGENTS);
    const rec = listProcesses(openStateDir(state)).find((p) => p.name === 'deploy-agent-agent-t1')!;
    expect(rec.spec?.env.IFMESH_CA_FILE).toBe(caFile);

    // A second release, then a rollback given the CA with --ca: its registration gate reads /agents
    // over https.
    const v2 = await deploy('v2');
    expect(v2.code, v2.stderr).toBe(0);
    const back = await spawnCli(
      ['rollback', '--ca', caFile, '--reason', 'tls test', '--state-dir', state, '--json'],
      {
        cwd: dir,
        env,
        timeoutMs: 90_000,
      },
    );
    expect(back.code, back.stderr).toBe(0);
    const releases = JSON.parse(
      (await spawnCli(['releases', '--state-dir', state, '--json'], { cwd: dir })).stdout,
    );
    expect(releases.releases.map((x: { ref: string; outcome: string }) => [x.ref, x.outcome])).toEqual([
      ['v2', 'rolled_back'],
      ['v1', 'restored'],
    ]);

    // status and verify, given the CA with --ca: everything healthy, the mesh verified.
    const st = await spawnCli(['status', '--ca', caFile, '--state-dir', state, '--json'], { cwd: dir });
    expect(st.code, st.stderr).toBe(0);
    const components = JSON.parse(st.stdout).components as { name: string; healthy: boolean; url: string }[];
    expect(components.filter((c) => !c.healthy)).toEqual([]);
    expect(components.find((c) => c.name === 'deploy-nginx')?.url).toBe(`wss://127.0.0.1:${nginxPort}`);
    const v = await spawnCli(
      [
        'verify',
        '--state-dir',
        state,
        '--ca',
        caFile,
        '--loopback',
        '--agents',
        '2',
        '--messages',
        '5',
        // The RTT gate depends on this machine's load; its budget is tested in agent-cli.test.ts.
        '--max-rtt-p95',
        '10s',
        '--json',
      ],
      { cwd: dir, env, timeoutMs: 60_000 },
    );
    expect(v.code, `${v.stderr}${v.stdout}`).toBe(0);
    // IFMESH_CA_FILE in the environment does the same as --ca.
    const viaEnv = await spawnCli(['status', '--state-dir', state, '--json'], {
      cwd: dir,
      env: { IFMESH_CA_FILE: caFile },
    });
    expect(JSON.parse(viaEnv.stdout).components.filter((c: { healthy: boolean }) => !c.healthy)).toEqual([]);

    // Given nothing, status reads the env file the fleet was deployed with (tls.env), which names
    // the CA: every component is verified.
    const own = await spawnCli(['status', '--state-dir', state, '--json'], { cwd: dir });
    expect(own.code, own.stdout).toBe(0);
    // An operator whose configuration lacks the CA (another host, another env file): blind.env.
    writeFileSync(path.join(dir, 'blind.env'), '# no IFMESH_CA_FILE\n');
    const blindCfg = ['--config', 'blind.env'];
    // status without the CA: the TLS components are not called down but unverified, and it says how
    // to see them.
    const blindStatus = await spawnCli(['status', '--state-dir', state, '--json', ...blindCfg], { cwd: dir });
    expect(blindStatus.code).toBe(1);
    const blindComponents = JSON.parse(blindStatus.stdout).components as {
      name: string;
      unverified: { error: string; fix: string } | null;
    }[];
    expect(blindComponents.filter((c) => c.unverified).map((c) => c.name)).toEqual(
      expect.arrayContaining(['deploy-signaling-1', 'deploy-signaling-2', 'deploy-nginx']),
    );
    expect(blindComponents.find((c) => c.name === 'deploy-nginx')?.unverified).toMatchObject({
      error: expect.stringContaining('failed certificate verification'),
      fix: expect.stringContaining('--ca FILE'),
    });
    const human = await spawnCli(['status', '--state-dir', state, ...blindCfg], { cwd: dir });
    expect(human.stdout).toMatch(
      /deploy-signaling-1.* answered with a certificate this command cannot verify: pass --ca FILE/,
    );

    // incident p1 without the CA: nothing is dead, and its diagnosis names the certificate and the
    // fix, not the network.
    const p1 = await spawnCli(['incident', 'p1', '--state-dir', state, '--json', ...blindCfg], {
      cwd: dir,
      env,
      timeoutMs: 60_000,
    });
    const incident = JSON.parse(p1.stdout);
    expect(
      incident.actions.filter((a: { action: string }) => a.action === 'signaling_server_restarted'),
    ).toEqual([]);
    const diagnosis = incident.actions.find((a: { action: string }) => a.action === 'diagnosis');
    expect(diagnosis.detail).toContain(
      'answered with a certificate this command cannot verify: pass --ca FILE',
    );
    expect(diagnosis.detail).not.toContain('network or load balancer');
    await spawnCli(['incident', 'resolve', incident.id, '--state-dir', state], { cwd: dir, env });

    // Without the CA: one line naming certificate verification and the fix, no stack trace.
    const bare = await spawnCli(
      ['verify', '--state-dir', state, '--loopback', '--messages', '5', ...blindCfg],
      {
        cwd: dir,
        env,
        timeoutMs: 60_000,
      },
    );
    expect(bare.code).toBe(3);
    const said = `${bare.stdout}${bare.stderr}`;
    expect(said).toMatch(/failed certificate verification: .*\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/);
    expect(said).toContain('--ca FILE');
    expect(said).not.toMatch(/\n\s+at /);
    // A command that reads the instances' API directly fails the same way, as one JSON error.
    const top = await spawnCli(['top', '--state-dir', state, '--json', ...blindCfg], { cwd: dir });
    expect(top.code).toBe(3);
    expect(JSON.parse(top.stdout).error.message).toContain('failed certificate verification');
    expect(top.stderr).not.toMatch(/\n\s+at /);

    // failover signaling finds no failed instance given the CA; without it, answering instances are
    // not called failed: the certificate error and its fix, exit 3.
    const none = await spawnCli(
      ['failover', 'signaling', '--ca', caFile, '--dry-run', '--state-dir', state],
      {
        cwd: dir,
        env,
      },
    );
    expect(none.code, none.stderr).toBe(2);
    expect(none.stderr).toContain('none failed');
    const blind = await spawnCli(
      ['failover', 'signaling', '--dry-run', '--state-dir', state, '--json', ...blindCfg],
      {
        cwd: dir,
        env,
      },
    );
    expect(blind.code, blind.stderr).toBe(3);
    expect(JSON.parse(blind.stdout).error.message).toContain('failed certificate verification');

    // A pair the CA did not issue copied into place, then an instance crash: the supervisor's restart
    // brings it up on that pair (it is the file), but nginx is not reloaded onto it: the front door
    // keeps the certificate its agents trust (a reload made it serve the bad one, and every agent
    // lost it).
    const front = await servedFingerprint(nginxPort);
    const intruder = makeCert(dir, 'intruder', 30, 'DNS:localhost,IP:127.0.0.1');
    writeFileSync(path.join(dir, 'certs/signaling.key'), readFileSync(intruder.key));
    writeFileSync(path.join(dir, 'certs/signaling.crt'), readFileSync(intruder.cert));
    const victim = listProcesses(openStateDir(state)).find((p) => p.name === 'deploy-signaling-1')!.pid;
    process.kill(victim, 'SIGKILL');
    await waitFor(() => !isAlive(victim), 'deploy-signaling-1 to die');
    // The supervisor restarts it through the fleet's restart path.
    // The supervisor's log line for that restart comes once it is done (nginx reloaded or not).
    const supervisorLog = path.join(state, 'logs', 'supervisor.log');
    const restartLine = () =>
      readFileSync(supervisorLog, 'utf8')
        .split('\n')
        .find((l) => /service_restart\w* deploy-signaling-1:/.test(l));
    await waitFor(() => restartLine() !== undefined, 'the supervisor to restart deploy-signaling-1', {
      timeoutMs: 45_000,
    });
    expect(restartLine()).toContain('cannot verify');
    expect(restartLine()).not.toContain('reloaded');
    expect(await servedFingerprint(base)).not.toBe(front);
    expect(await servedFingerprint(nginxPort)).toBe(front);

    const pids = listProcesses(openStateDir(state)).map((p) => p.pid);
    const down = await spawnCli(['down', '--state-dir', state, '--json'], { cwd: dir, timeoutMs: 60_000 });
    expect(down.code).toBe(0);
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
  }, 180_000);
});
