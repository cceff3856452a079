import type { Dispatcher } from 'undici';
import type { Exec, ExecResult } from '../cli/context.js';
import { httpRequest } from '../clients/http.js';
import { UnreachableError } from '../errors.js';
import { type Clock, systemClock } from '../util/clock.js';
import { type ServerProcess, startServerProcess } from './server-process.js';

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

/** Prometheus (and Alertmanager) answer /-/ready with 200 once ready: TSDB open and rules loaded, or the configuration loaded. */
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

export interface RunningPrometheus extends ServerProcess {
  url: string;
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
  const url = `http://${o.host ?? '127.0.0.1'}:${o.port}`;
  const server = await startServerProcess({
    name: 'prometheus',
    command: o.binary ?? 'prometheus',
    args: prometheusArgs(o),
    debianPackage: 'prometheus',
    stdio: o.logFd ?? 'pipe',
    detached: o.detached,
    logLimit: 50_000,
    ready: () => prometheusReady(url),
    timeoutMs,
    intervalMs: 100,
    clock,
    notReady: `prometheus did not become ready on ${url}`,
    logTail: 800,
    stopGraceMs: 5_000,
  });
  return { ...server, url };
}

/** Runs amtool (Debian's prometheus-alertmanager); a missing binary is an UnreachableError naming the package. */
export async function amtool(
  exec: Exec,
  args: string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<ExecResult> {
  try {
    return await exec('amtool', args, { timeoutMs: opts.timeoutMs ?? 30_000, cwd: opts.cwd });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new UnreachableError('amtool is not installed', 'apt-get install prometheus-alertmanager');
    throw err;
  }
}

export interface AlertmanagerOptions {
  configFile: string;
  port: number;
  dataDir: string;
  host?: string;
  logFd?: number;
  detached?: boolean;
  /** Debian installs it as prometheus-alertmanager; upstream's tarball as alertmanager. */
  binary?: string;
}

export interface RunningAlertmanager extends ServerProcess {
  url: string;
}

export function alertmanagerArgs(o: AlertmanagerOptions): string[] {
  return [
    `--config.file=${o.configFile}`,
    `--web.listen-address=${o.host ?? '127.0.0.1'}:${o.port}`,
    `--storage.path=${o.dataDir}`,
    // One instance, no gossip: an empty address turns clustering off, so nothing binds :9094.
    '--cluster.listen-address=',
  ];
}

/** Starts Alertmanager and waits until /-/ready answers 200 (its configuration loaded). */
export async function startAlertmanager(
  o: AlertmanagerOptions,
  timeoutMs = 30_000,
  clock: Clock = systemClock,
): Promise<RunningAlertmanager> {
  const url = `http://${o.host ?? '127.0.0.1'}:${o.port}`;
  const server = await startServerProcess({
    name: 'alertmanager',
    command: o.binary ?? 'prometheus-alertmanager',
    args: alertmanagerArgs(o),
    debianPackage: 'prometheus-alertmanager',
    stdio: o.logFd ?? 'pipe',
    detached: o.detached,
    logLimit: 50_000,
    ready: () => prometheusReady(url),
    timeoutMs,
    intervalMs: 100,
    clock,
    notReady: `alertmanager did not become ready on ${url}`,
    logTail: 800,
    stopGraceMs: 5_000,
  });
  return { ...server, url };
}
