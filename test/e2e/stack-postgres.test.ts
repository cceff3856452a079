// `ifmesh up --witness-db postgres`: a local PostgreSQL cluster (initdb in the state directory, run
// as the postgres user since the tests run as root) under the witness; idempotent; `down` stops it
// after the witness.
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../src/exec/pid.js';
import { listProcesses } from '../../src/state/processes.js';
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
    const procs = listProcesses(state);
    for (const p of procs) {
      seen.add(p.pid);
      trackPid(p.pid);
    }
    expect(first.code, first.stderr).toBe(0);
    const report = JSON.parse(first.stdout);
    expect(report.started.slice(0, 2)).toEqual(['postgres', 'witness']);
    expect(report.endpoints.witness_db).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/witness$/);
    const pg = procs.find((p) => p.role === 'postgres');
    expect(pg && isAlive(pg.pid)).toBe(true);

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
    expect(isAlive(pg!.pid)).toBe(false);
    for (const p of procs) expect(isAlive(p.pid)).toBe(false);
  }, 240_000);
});
