// `ifmesh supervise` started by hand (an operator bringing back a supervisor that died): it records
// itself, so `status` shows it running and `deploy` does not start a second, and a second one on the
// same state directory is refused.
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { readProcess } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { BIN, spawnCli, stateDir, tempDir, testTmp } from '../helpers/cli.js';
import { trackPid } from '../helpers/pids.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('ifmesh supervise by hand', () => {
  it('records itself: status shows it running, and a second supervisor on the state directory is refused', async () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    const state = stateDir(t.dir);
    const child = spawn(process.execPath, [BIN, 'supervise', '--state-dir', state], {
      cwd: t.dir,
      env: { PATH: process.env.PATH ?? '', ...testTmp() },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    trackPid(child.pid);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    cleanups.push(async () => {
      child.kill('SIGTERM');
      await exited;
    });
    let err = '';
    child.stderr!.on('data', (d) => {
      err += d;
    });
    await waitFor(() => err.includes('watching the services'), 'the supervisor to start watching');

    expect(readProcess(openStateDir(state), 'supervisor')).toMatchObject({
      pid: child.pid,
      role: 'supervisor',
    });
    const st = await spawnCli(['status', '--state-dir', state, '--json'], { cwd: t.dir });
    const supervisor = JSON.parse(st.stdout).components.find(
      (c: { name: string }) => c.name === 'supervisor',
    );
    expect(supervisor).toMatchObject({ running: true, pid: child.pid });

    const second = await spawnCli(['supervise', '--state-dir', state], { cwd: t.dir });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`a supervisor (pid ${child.pid}) already watches ${state}`);
    expect(readProcess(openStateDir(state), 'supervisor')?.pid).toBe(child.pid);
  });
});
