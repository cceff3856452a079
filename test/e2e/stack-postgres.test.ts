// `ifmesh up --witness-db postgres`: a local PostgreSQL cluster (initdb in the state directory, run
// as the postgres user since the tests run as root) under the witness; idempotent; `down` stops it
// after the witness. The cluster authenticates every connection with scram-sha-256 and a password
// generated into the state's secrets file; nothing without it gets in.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { listProcesses } from '../../src/state/processes.js';
import { readSecrets } from '../../src/state/secrets.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { spawnCli, tempDir } from '../helpers/cli.js';
import { trackPid } from '../helpers/pids.js';
import { letPostgresReach, requirePostgres } from '../helpers/postgres.js';

const { dir, cleanup } = tempDir();
letPostgresReach(dir);
const state = path.join(dir, 'stack');
const seen = new Set<number>();
afterAll(async () => {
  await spawnCli(['down', '--state-dir', state], { timeoutMs: 60_000 });
  for (const pid of seen) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  cleanup();
});

describe('ifmesh up --witness-db postgres', () => {
  it('starts PostgreSQL from initdb under the witness, leaves it alone when running, and down stops it last', async () => {
    requirePostgres();
    const up = () =>
      spawnCli(
        [
          'up',
          // RTT depends on this machine's load; the budget is tested in agent-cli.test.ts.
          '--max-rtt-p95',
          '10s',
          '--witness-db',
          'postgres',
          '--agents',
          '2',
          '--instances',
          '1',
          '--state-dir',
          state,
          '--json',
        ],
        {
          cwd: dir,
          timeoutMs: 120_000,
        },
      );
    const first = await up();
    const procs = listProcesses(openStateDir(state));
    for (const p of procs) {
      seen.add(p.pid);
      trackPid(p.pid);
    }
    expect(first.code, first.stderr).toBe(0);
    const report = JSON.parse(first.stdout);
    expect(report.started.slice(0, 2)).toEqual(['postgres', 'witness']);
    // The URL is shown with its password redacted.
    expect(report.endpoints.witness_db).toMatch(/^postgres:\/\/postgres:redacted@127\.0\.0\.1:\d+\/witness$/);
    const pgRec = procs.find((p) => p.role === 'postgres');
    expect(pgRec && isAlive(pgRec.pid)).toBe(true);

    // The password lives in the 0600 secrets file only: not printed, not on any argv, no pwfile left.
    const password = readSecrets(openStateDir(state))?.env?.POSTGRES_PASSWORD;
    expect(password).toMatch(/^[\w-]{20,}$/);
    expect(statSync(openStateDir(state).secrets).mode & 0o777).toBe(0o600);
    expect(first.stdout + first.stderr).not.toContain(password!);
    for (const p of procs)
      if (isAlive(p.pid)) expect(readFileSync(`/proc/${p.pid}/cmdline`, 'utf8')).not.toContain(password!);
    expect(readdirSync(path.join(state, 'postgres')).filter((f) => f.includes('pw'))).toEqual([]);
    const hba = readFileSync(path.join(state, 'postgres', 'data', 'pg_hba.conf'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.trim().startsWith('#'));
    expect(hba.length).toBeGreaterThan(0);
    for (const l of hba) expect(l).toMatch(/scram-sha-256\s*$/);

    const connect = async (pass?: string) => {
      const c = new pg.Client({
        host: '127.0.0.1',
        port: pgRec!.port,
        user: 'postgres',
        database: 'witness',
        ...(pass !== undefined ? { password: pass } : {}),
        connectionTimeoutMillis: 10_000,
      });
      c.on('error', () => {});
      try {
        await c.connect();
        return (await c.query('SELECT count(*)::int AS n FROM pg_tables')).rows[0].n as number;
      } finally {
        await c.end().catch(() => {});
      }
    };
    await expect(connect('')).rejects.toThrow(/password/);
    await expect(connect('not-the-password')).rejects.toThrow(/password authentication failed/);
    expect(await connect(password)).toBeGreaterThan(0);

    const health = (await (
      await fetch(`${report.endpoints.witness}/health`, { signal: AbortSignal.timeout(5_000) })
    ).json()) as { store?: string; tree_size?: number };
    expect(health.store).toBe('postgres');
    expect(health.tree_size).toBeGreaterThan(0);

    const again = await up();
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).already_running).toEqual(expect.arrayContaining(['postgres', 'witness']));

    const v = await spawnCli(
      ['witness', 'verify', '--url', report.endpoints.witness, '--state-dir', state, '--json'],
      {
        timeoutMs: 30_000,
      },
    );
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true });
    // With neither --db nor --url, verify reads the stack's PostgreSQL database directly.
    const offline = await spawnCli(['witness', 'verify', '--state-dir', state, '--json'], {
      timeoutMs: 30_000,
    });
    expect(JSON.parse(offline.stdout)).toMatchObject({ ok: true, source: report.endpoints.witness_db });

    const down = await spawnCli(['down', '--state-dir', state, '--json'], { timeoutMs: 60_000 });
    expect(down.code, down.stderr).toBe(0);
    expect(JSON.parse(down.stdout).stopped).toEqual(expect.arrayContaining(['postgres', 'witness']));
    expect(isAlive(pgRec!.pid)).toBe(false);
    for (const p of procs) expect(isAlive(p.pid)).toBe(false);
  }, 240_000);
});
