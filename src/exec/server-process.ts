// Spawn an external server (redis-server, prometheus, turnserver), keep the tail of its output,
// wait until it answers, kill it if it never does, and stop it by pid: the part every src/exec
// starter shares. What "ready" means stays with each server.
import { type ChildProcess, spawn } from 'node:child_process';
import { UnreachableError } from '../errors.js';
import { type Clock, systemClock } from '../util/clock.js';
import { waitFor, within } from '../util/wait.js';

export interface ServerProcessOptions {
  /** The server's name in errors (`command` may be a path). */
  name: string;
  command: string;
  args: string[];
  /** The Debian package that provides `command`, named when it cannot be started. */
  debianPackage: string;
  /** 'pipe' keeps the output in memory for `log()`; a file descriptor sends it there. */
  stdio: 'pipe' | 'ignore' | number;
  /** Detach (for `ifmesh up`), so the server outlives the command that started it. */
  detached?: boolean | undefined;
  /** Characters of output kept for `log()`. */
  logLimit: number;
  /** True once the server answers; tried every `intervalMs` until `timeoutMs`. */
  ready: () => Promise<boolean>;
  timeoutMs: number;
  intervalMs: number;
  clock?: Clock | undefined;
  /** The error when it never answers: `${notReady}: ` then the last `logTail` characters of output. */
  notReady: string;
  logTail: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL. */
  stopGraceMs: number;
}

export interface ServerProcess {
  pid: number;
  child: ChildProcess;
  log: () => string;
  stop(): Promise<void>;
}

export async function startServerProcess(o: ServerProcessOptions): Promise<ServerProcess> {
  const child = spawn(o.command, o.args, {
    stdio: o.stdio === 'pipe' ? ['ignore', 'pipe', 'pipe'] : ['ignore', o.stdio, o.stdio],
    detached: o.detached ?? false,
  });
  let log = '';
  const keep = (d: Buffer) => {
    log = (log + d.toString()).slice(-o.logLimit);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // 'close' comes once the output pipes are drained, which can be after 'exit'.
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('spawn', () => resolve(true));
    child.once('error', () => resolve(false));
  });
  if (!spawned)
    throw new UnreachableError(`${o.name} could not be started`, `apt-get install ${o.debianPackage}`);
  let up = false;
  const clock = o.clock ?? systemClock;
  await waitFor(
    async () => {
      if (child.exitCode !== null) return true;
      up = await o.ready();
      return up;
    },
    { timeoutMs: o.timeoutMs, intervalMs: o.intervalMs },
    clock,
  );
  if (!up || child.exitCode !== null) {
    child.kill('SIGKILL');
    // So the error carries the server's last words (bounded: a grandchild may hold the pipes).
    await within(closed, 1_000, clock);
    throw new UnreachableError(`${o.notReady}: ${log.slice(-o.logTail)}`);
  }
  if (o.detached) child.unref();
  return {
    pid: child.pid!,
    child,
    log: () => log,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), o.stopGraceMs);
      await exited;
      clearTimeout(t);
    },
  };
}
