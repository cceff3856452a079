// Prometheus and promtool (Debian's `prometheus`): checks of the exported files and a Prometheus
// on loopback for `up --with-prometheus` and the tests.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { httpRequest } from '../clients/http.js';
import { UnreachableError } from '../errors.js';

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs promtool; a missing binary is an UnreachableError naming the Debian package. */
export function promtool(
  args: string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(
      'promtool',
      args,
      { cwd: opts.cwd, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 8 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && (error as NodeJS.ErrnoException).code === 'ENOENT')
          return reject(new UnreachableError('promtool is not installed', 'apt-get install prometheus'));
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
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
export async function startPrometheus(o: PrometheusOptions, timeoutMs = 30_000): Promise<RunningPrometheus> {
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
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    const ready = await httpRequest(`${url}/-/ready`, { timeoutMs: 1_000 }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new UnreachableError(`prometheus did not become ready on ${url}: ${log.slice(-800)}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(50 * (i + 1), 250)));
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
