import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive, isZombie } from '../../src/exec/pid.js';
import { Supervisor } from '../../src/ops/fleet/supervisor.js';
import { listProcesses, readProcess } from '../../src/state/processes.js';
import { openStateDir } from '../../src/state/state-dir.js';
import { tempDir } from '../helpers/cli.js';
import { FakeClock } from '../helpers/clock.js';
import { trackPid } from '../helpers/pids.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function state(): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

// Ignores SIGTERM (says so), and answers "pong" to every "ping" on stdin: proof it is still alive.
const STUBBORN = `
process.on('SIGTERM', () => process.stdout.write('TERM\\n'));
process.stdin.on('data', () => process.stdout.write('pong\\n'));
process.stdout.write('ready\\n');
setInterval(() => {}, 1 << 30);
`;

describe('Supervisor.stop', () => {
  it('sends SIGKILL to a process that ignores SIGTERM exactly when the fake clock passes the grace period', async () => {
    const dir = state();
    const clock = new FakeClock();
    const sup = new Supervisor(openStateDir(dir), { clock, owner: 'test' });
    const child = spawn(process.execPath, ['-e', STUBBORN], { stdio: ['pipe', 'pipe', 'inherit'] });
    trackPid(child.pid);
    cleanups.push(() => child.kill('SIGKILL'));
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const line = async () => (await lines.next()).value as string;
    let exit: NodeJS.Signals | null | undefined;
    child.once('exit', (_code, sig) => {
      exit = sig;
    });
    expect(await line()).toBe('ready');
    sup.adopt({ name: 'stubborn', role: 'signaling' }, child.pid!);
    expect(listProcesses(openStateDir(dir))).toMatchObject([
      { name: 'stubborn', role: 'signaling', pid: child.pid, owner: 'test' },
    ]);

    const stopped = sup.stop('stubborn', 5_000);
    expect(await line()).toBe('TERM');
    await clock.advance(4_999);
    // Still alive after the step: it answers a ping sent after every timer up to 4,999 ms has fired.
    child.stdin!.write('ping\n');
    expect(await line()).toBe('pong');
    expect(exit).toBeUndefined();

    await clock.advance(1);
    await waitFor(() => exit !== undefined, 'the child to exit');
    expect(exit).toBe('SIGKILL');
    // the post-kill poll runs on the fake clock too
    let outcome: string | undefined;
    void stopped.then((o) => {
      outcome = o;
    });
    for (let i = 0; i < 100 && outcome === undefined; i++) await clock.advance(25);
    expect(outcome).toBe('stopped');
    expect(listProcesses(openStateDir(dir))).toEqual([]);
  });

  it('treats a zombie as gone: not running, nothing to stop', async () => {
    const dir = state();
    // `cat` runs in the background of a shell that then becomes `sleep`, which never reaps it; cat
    // exits once we close the pipe it reads (fd 3), and stays a zombie.
    const parent = spawn('sh', ['-c', 'cat <&3 >/dev/null & echo $!; exec sleep 60 3<&-'], {
      stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
    });
    trackPid(parent.pid);
    cleanups.push(() => parent.kill('SIGKILL'));
    const zombie = Number(
      (await createInterface({ input: parent.stdout! })[Symbol.asyncIterator]().next()).value,
    );
    expect(isAlive(zombie)).toBe(true);
    // Only once the shell has become `sleep` may cat exit: a shell that is still a shell reaps it.
    await waitFor(
      () => readFileSync(`/proc/${parent.pid}/comm`, 'utf8').trim() === 'sleep',
      `the shell ${parent.pid} to exec sleep`,
    );
    (parent.stdio[3] as NodeJS.WritableStream).end();
    await waitFor(() => isZombie(zombie), `pid ${zombie} to become a zombie`);
    expect(isAlive(zombie)).toBe(false);
    expect(isAlive(parent.pid!)).toBe(true);

    const sup = new Supervisor(openStateDir(dir), { clock: new FakeClock(), owner: 'test' });
    sup.adopt({ name: 'ghost', role: 'agents' }, zombie);
    expect(sup.running('ghost')).toBeUndefined();
    expect(await sup.stop('ghost')).toBe('not_running');
    expect(listProcesses(openStateDir(dir))).toEqual([]);
  });
});

describe('Supervisor.restartFromRecord', () => {
  it('restarts a recorded process after its logs directory was removed, and logs why in a new log', async () => {
    const dir = state();
    const st = openStateDir(dir);
    const sup = new Supervisor(st, { clock: new FakeClock(), owner: 'test' });
    const first = sup.start({
      name: 'sleeper',
      role: 'agents',
      command: process.execPath,
      args: ['-e', 'setInterval(() => {}, 1 << 30)'],
    });
    trackPid(first);
    cleanups.push(() => killQuietly(first));
    const rec = readProcess(st, 'sleeper')!;
    // It died, and someone cleaned the logs away.
    process.kill(first, 'SIGKILL');
    await waitFor(() => !isAlive(first), `pid ${first} to die`);
    rmSync(st.logs, { recursive: true, force: true });
    const again = sup.restartFromRecord(rec, 'restarted by the test');
    trackPid(again);
    cleanups.push(() => killQuietly(again));
    expect(sup.running('sleeper')).toBe(again);
    expect(readProcess(st, 'sleeper')).toMatchObject({ pid: again, restarts: 1 });
    expect(readFileSync(sup.logFile('sleeper'), 'utf8')).toContain('restarted by the test');
  });
});
