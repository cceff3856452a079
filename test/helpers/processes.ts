import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { BIN, tempDir, testTmp } from './cli.js';
import { trackPid } from './pids.js';

const live = new Set<ChildProcess>();
// Whatever a failing test leaves behind is killed by pid when the worker exits.
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface Service {
  pid: number;
  url: string;
  ready: Record<string, unknown>;
  child: ChildProcess;
  stderr: () => string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
  exited: Promise<number | null>;
}

/** Starts `ifmesh <args> --json` and waits for its one-line JSON ready document (with a `url`). */
export function startService(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 15_000,
): Promise<Service> {
  const child = spawn(process.execPath, [BIN, ...args, '--json'], {
    env: { PATH: process.env.PATH ?? '', ...testTmp(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  trackPid(child.pid);
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? (signal ? 128 : null));
    });
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ifmesh ${args.join(' ')} not ready in ${timeoutMs} ms:\n${err}`));
    }, timeoutMs);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`ifmesh ${args.join(' ')} exited ${code} before it was ready:\n${err}`));
    });
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      clearTimeout(timer);
      const ready = JSON.parse(line) as Record<string, unknown>;
      resolve({
        pid: child.pid!,
        url: String(ready.url),
        ready,
        child,
        stderr: () => err,
        exited,
        kill: (signal) => {
          child.kill(signal);
        },
        stop: async (graceMs = 5_000) => {
          if (child.exitCode !== null || child.signalCode !== null) return exited;
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
          const code = await exited;
          clearTimeout(t);
          return code;
        },
      });
    });
  });
}

export function startWitnessProcess(
  dbPath: string,
  extraArgs: string[] = [],
  env: Record<string, string> = {},
): Promise<Service> {
  return startService(['witness', 'serve', '--port', '0', '--db', dbPath, ...extraArgs], {
    IF_WITNESS_API_KEY: 'test-witness-key',
    ...env,
  });
}

/** A port that was free a moment ago (for services that must come back on the same address). */
export { freePort } from '../../src/ops/stack/stack.js';

/** Whether `pid` is stopped (SIGSTOP: state T in /proc), e.g. a canary runner paused at a boundary. */
export function isStopped(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] === 'T';
  } catch {
    return false;
  }
}

/** Resident memory of a process, from /proc. */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * `ifmesh signaling serve` on a free loopback port. Without a state directory of the caller's, each
 * instance gets a fresh one (removed when it exits): an instance persists its id → key bindings
 * there, and the working directory's `.ifmesh` would carry them from one test (and run) to the next.
 */
export async function startSignalingProcess(
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<Service> {
  const own = args.includes('--state-dir') || env.IFMESH_STATE_DIR ? undefined : tempDir();
  try {
    const svc = await startService(
      [
        'signaling',
        'serve',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        ...(own ? ['--state-dir', own.dir] : []),
        ...args,
      ],
      env,
    );
    void svc.exited.then(() => own?.cleanup());
    return svc;
  } catch (err) {
    own?.cleanup();
    throw err;
  }
}
