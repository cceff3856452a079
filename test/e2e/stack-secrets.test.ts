// Secrets stay off command lines: after `ifmesh up` (and `ifmesh deploy`), no recorded process has
// any value of the state's secrets.json (Redis's password, the cluster URL and secret, the witness's
// write and admin keys, the TURN password, the admin token) in its argv, and no process on the host
// has a generated one. coturn and Redis read theirs from 0600 files; Redis asks for its password and
// listens on loopback only.
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { probeRedis } from '../../src/exec/redis.js';
import { listProcesses } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { requireBinary } from '../helpers/binaries.js';
import { run, spawnCli, tempDir } from '../helpers/cli.js';
import { startCoturn } from '../helpers/coturn.js';
import { freePort } from '../helpers/processes.js';
import { freePortRange } from '../helpers/redis.js';
import { API_KEY, startWitness } from '../helpers/witness.js';

const { dir, cleanup } = tempDir();
const states: string[] = [];
const seen = new Set<number>();
afterAll(async () => {
  for (const state of states) await spawnCli(['down', '--state-dir', state], { cwd: dir, timeoutMs: 60_000 });
  for (const pid of seen) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  cleanup();
});

/** Every string in secrets.json (the stack's credentials and the secret env values of records). */
function secretValues(state: string): string[] {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (typeof v === 'string') out.push(v);
    else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
  };
  walk(JSON.parse(readFileSync(path.join(state, 'secrets.json'), 'utf8')));
  return [...new Set(out)];
}

const cmdline = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
};

/** Recorded processes whose argv holds a secret, as "name: KEY-OR-INDEX". */
function leaks(state: string, secrets: string[]): string[] {
  const found: string[] = [];
  for (const p of listProcesses(openStateDir(state))) {
    seen.add(p.pid);
    expect(isAlive(p.pid), `${p.name} runs`).toBe(true);
    const argv = cmdline(p.pid);
    expect(argv, `${p.name} has a command line`).not.toBe('');
    secrets.forEach((s, i) => {
      if (argv.includes(s)) found.push(`${p.name}: secret #${i}`);
    });
  }
  return found;
}

/** Whether anything listens on TCP `port` on an address other than 127.0.0.1. */
function listeningBeyondLoopback(port: number): string[] {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const out: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const [, local, , st] = line.trim().split(/\s+/);
      if (st !== '0A' || !local?.endsWith(`:${hex}`)) continue;
      if (local !== `0100007F:${hex}`) out.push(local);
    }
  }
  return out;
}

describe('secrets off command lines', () => {
  it('ifmesh up: no recorded process has a secret in its argv; Redis wants its password, on loopback', async () => {
    requireBinary('turnserver', 'coturn');
    requireBinary('redis-server', 'redis-server');
    const state = path.join(dir, 'up');
    states.push(state);
    const up = await spawnCli(['up', '--max-rtt-p95', '10s', '--state-dir', state, '--json'], {
      cwd: dir,
      timeoutMs: 120_000,
    });
    expect(up.code, up.stderr).toBe(0);
    const report = JSON.parse(up.stdout);
    expect(report.signaling_mode).toBe('redis');
    expect(report.verification).toMatchObject({ ok: true });

    const secrets = secretValues(state);
    const env = JSON.parse(readFileSync(path.join(state, 'secrets.json'), 'utf8')).env;
    // What up generated for the services it started, each kept here and nowhere on a command line.
    // Generated service secrets, and each process's secret environment under its own name.
    expect(Object.keys(env)).toEqual(
      expect.arrayContaining([
        'REDIS_PASSWORD',
        'SIGNALING_CLUSTER_SECRET',
        'IF_WITNESS_ADMIN_KEY',
        'process:signaling-1:SIGNALING_CLUSTER_URL',
        'process:signaling-1:IF_WITNESS_API_KEY',
        'process:witness:IF_WITNESS_ADMIN_KEY',
      ]),
    );
    expect(env.IF_WITNESS_ADMIN_KEY).not.toBe(env['process:witness:IF_WITNESS_API_KEY']);
    expect(env['process:witness:IF_WITNESS_API_KEY']).toEqual(expect.any(String));
    expect(secrets.every((s) => s.length >= 16)).toBe(true);
    const recorded = listProcesses(openStateDir(state));
    expect(recorded.map((p) => p.role).sort()).toEqual(
      expect.arrayContaining(['agents', 'coturn', 'nginx', 'redis', 'signaling', 'supervisor', 'witness']),
    );
    expect(leaks(state, secrets)).toEqual([]);
    // Not any process on this host, recorded or not (nginx workers, whatever a process spawned).
    for (const entry of readdirSync('/proc')) {
      const pid = Number(entry);
      if (!pid) continue;
      const argv = cmdline(pid);
      for (const s of secrets) expect(argv.includes(s), `pid ${pid}: ${argv.slice(0, 80)}`).toBe(false);
    }
    // Records name secret keys, never their values.
    for (const p of recorded) {
      const text = readFileSync(path.join(state, 'run', `${p.name}.json`), 'utf8');
      for (const s of secrets) expect(text.includes(s), `record of ${p.name}`).toBe(false);
    }
    const sig = recorded.find((p) => p.role === 'signaling')!;
    expect(sig.spec?.secret_env).toEqual(
      expect.arrayContaining(['SIGNALING_CLUSTER_URL', 'SIGNALING_CLUSTER_SECRET', 'IF_WITNESS_API_KEY']),
    );
    expect(sig.spec?.secret_env).not.toContain('IF_WITNESS_ADMIN_KEY');

    // The credential files: readable by their owner only.
    for (const f of ['redis/redis.conf', 'coturn/coturn-1.conf', 'coturn/coturn-2.conf'])
      expect((statSync(path.join(state, f)).mode & 0o777).toString(8), f).toBe('600');
    const redis = recorded.find((p) => p.role === 'redis')!;
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(await probeRedis(redis.url!)).toBe('auth');
    expect(await probeRedis(env['process:signaling-1:SIGNALING_CLUSTER_URL'])).toBe('ok');
    expect(listeningBeyondLoopback(redis.port!)).toEqual([]);
  }, 180_000);

  it('ifmesh deploy: the same, with deploy starting its own Redis', async () => {
    requireBinary('redis-server', 'redis-server');
    const turn = await startCoturn('ifmesh', 'deploy-turn-password-0123');
    const w = await startWitness();
    const state = path.join(dir, 'deployed');
    states.push(state);
    try {
      mkdirSync(path.join(dir, 'config/agents'), { recursive: true });
      for (const id of ['agent-s1', 'agent-s2']) {
        await run(['keys', 'generate', '--agent', id, '--out', 'keys'], { cwd: dir });
        writeFileSync(
          path.join(dir, `config/agents/${id}.json`),
          JSON.stringify({ agent_id: id, key: `../../keys/${id}.key`, loopback: true }),
        );
      }
      const env = {
        STUN_SERVERS: turn.stunUrl,
        TURN_SERVERS: turn.url,
        TURN_USERNAME: 'ifmesh',
        TURN_PASSWORD: 'deploy-turn-password-0123',
        IF_WITNESS_ENDPOINT: w.url,
        IF_WITNESS_API_KEY: API_KEY,
        SIGNALING_ADMIN_TOKEN: 'deploy-admin-token-0123456789',
        // deploy binds SIGNALING_HOST (default 0.0.0.0): tests stay on loopback.
        SIGNALING_HOST: '127.0.0.1',
      };
      const base = await freePortRange(3);
      const r = await spawnCli(
        [
          'deploy',
          '--json',
          '--base-port',
          String(base),
          '--nginx-port',
          String(await freePort()),
          '--state-dir',
          state,
        ],
        { cwd: dir, env, timeoutMs: 120_000 },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).plan.signaling_mode).toBe('redis');
      const secrets = [
        ...secretValues(state),
        env.TURN_PASSWORD,
        env.IF_WITNESS_API_KEY,
        env.SIGNALING_ADMIN_TOKEN,
      ];
      expect(JSON.parse(readFileSync(path.join(state, 'secrets.json'), 'utf8')).env).toHaveProperty(
        'DEPLOY_REDIS_PASSWORD',
      );
      expect(leaks(state, secrets)).toEqual([]);
      expect(cmdline(turn.pid)).not.toContain(env.TURN_PASSWORD);
      const redis = listProcesses(openStateDir(state)).find((p) => p.role === 'redis')!;
      expect(await probeRedis(redis.url!)).toBe('auth');
      expect(listeningBeyondLoopback(redis.port!)).toEqual([]);
      expect(r.stdout).not.toContain(secretValues(state).find((s) => s.startsWith('redis://'))!);
    } finally {
      await spawnCli(['down', '--state-dir', state], { cwd: dir, timeoutMs: 60_000 });
      await w.stop();
      await turn.stop();
    }
  }, 180_000);
});
