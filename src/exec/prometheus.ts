// Prometheus and promtool (Debian's `prometheus`): checks of the exported files and a Prometheus
// on loopback for `up --with-prometheus` and the tests.
import { type ChildProcess, spawn } from 'node:child_process';
import type { Dispatcher } from 'undici';
import type { Exec, ExecResult } from '../cli/context.js';
import { httpRequest } from '../clients/http.js';
import { UnreachableError } from '../errors.js';
import { type Clock, systemClock } from '../util/clock.js';
import { waitFor } from '../util/wait.js';

/** Runs promtool; a missing binary is an UnreachableError naming the Debian package. */
export async function promtool(
  exec: Exec,
  args: string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<ExecResult> {
  try {
    return await exec('promtool', args, { timeoutMs: opts.timeoutMs ?? 60_000, cwd: opts.cwd });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new UnreachableError('promtool is not installed', 'apt-get install prometheus');
    throw err;
  }
}

/** Prometheus answers /-/ready with 200 once its TSDB is open and its rules are loaded. */
export async function prometheusReady(url: string, dispatcher?: Dispatcher): Promise<boolean> {
  try {
    return (await httpRequest(`${url}/-/ready`, { timeoutMs: 1_000, dispatcher })).status === 200;
  } catch {
    return false;
  }
}

export interface PrometheusOptions {
  configFile: string;
  port: number;
  dataDir: string;
  host?: string;
  /** Where stdout/stderr go: a file descriptor (detached processes) or kept in memory. */
  logFd?: number;
  detached?: boolean;
  binary?: string;
}

export interface RunningPrometheus {
  pid: number;
  url: string;
  child: ChildProcess;
  log: () => string;
  stop(): Promise<void>;
}

export function prometheusArgs(o: PrometheusOptions): string[] {
  return [
    `--config.file=${o.configFile}`,
    `--web.listen-address=${o.host ?? '127.0.0.1'}:${o.port}`,
    `--storage.tsdb.path=${o.dataDir}`,
    '--storage.tsdb.retention.time=1d',
    // Lets a test or an operator re-read the exported files with POST /-/reload.
    '--web.enable-lifecycle',
  ];
}

/** Starts Prometheus and waits until /-/ready answers 200. */
export async function startPrometheus(
  o: PrometheusOptions,
  timeoutMs = 30_000,
  clock: Clock = systemClock,
): Promise<RunningPrometheus> {
  const child = spawn(o.binary ?? 'prometheus', prometheusArgs(o), {
    stdio: o.logFd !== undefined ? ['ignore', o.logFd, o.logFd] : ['ignore', 'pipe', 'pipe'],
    detached: o.detached ?? false,
  });
  let log = '';
  const keep = (d: Buffer) => {
    log = (log + d.toString()).slice(-50_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('spawn', () => resolve(true));
    child.once('error', () => resolve(false));
  });
  if (!spawned) throw new UnreachableError('prometheus could not be started', 'apt-get install prometheus');
  const url = `http://${o.host ?? '127.0.0.1'}:${o.port}`;
  let exited = false;
  const ready = await waitFor(
    async () => {
      exited = child.exitCode !== null;
      return exited || (await prometheusReady(url));
    },
    { timeoutMs, intervalMs: 100 },
    clock,
  );
  if (!ready || exited) {
    child.kill('SIGKILL');
    throw new UnreachableError(`prometheus did not become ready on ${url}: ${log.slice(-800)}`);
  }
  if (o.detached) child.unref();
  return {
    pid: child.pid!,
    url,
    child,
    log: () => log,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}
