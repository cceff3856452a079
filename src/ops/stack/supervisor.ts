// Local processes of a state directory: started detached with their output in <state>/logs/<name>.log
// and recorded with their role in the state's process list (src/state/processes.ts), stopped by pid.
// A record whose process is gone (or a zombie) is stale.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { isAlive } from '../../exec/pid.js';
import {
  forgetProcess,
  listProcesses,
  type ProcessRecord,
  type ProcessRole,
  readProcess,
  recordProcess,
} from '../../state/processes.js';
import { statePaths } from '../../state/state-dir.js';
import type { Clock } from '../../util/clock.js';
import { waitFor } from '../../util/wait.js';

export { isAlive };

export interface ProcessSpec {
  name: string;
  role: ProcessRole;
  command: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
  port?: number;
  url?: string;
}

export type StopOutcome = 'stopped' | 'not_running' | 'failed';

/** How long a SIGKILLed process may take to vanish before we call the stop failed. */
const AFTER_KILL_MS = 2_000;

export class Supervisor {
  readonly paths;

  /** `owner` is what starts processes through this supervisor (`up`, `deploy`): kept in each record. */
  constructor(
    readonly stateDir: string,
    private readonly o: { clock: Clock; owner: string },
  ) {
    this.paths = statePaths(stateDir);
  }

  logFile(name: string): string {
    return this.paths.logFile(name);
  }

  /** The recorded pid, if its process still runs (a dead one's record stays, for `status` to show). */
  running(name: string): number | undefined {
    const rec = readProcess(this.stateDir, name);
    return rec && Number.isInteger(rec.pid) && rec.pid > 0 && isAlive(rec.pid) ? rec.pid : undefined;
  }

  /** Every recorded process, running or not. */
  list(): ProcessRecord[] {
    return listProcesses(this.stateDir);
  }

  start(spec: ProcessSpec): number {
    mkdirSync(this.paths.logs, { recursive: true });
    const fd = openSync(this.logFile(spec.name), 'a');
    try {
      const child = spawn(spec.command, spec.args, {
        detached: true,
        cwd: spec.cwd,
        stdio: ['ignore', fd, fd],
        env: { ...process.env, ...spec.env },
      });
      if (!child.pid) throw new Error(`could not start ${spec.name} (${spec.command})`);
      child.unref();
      this.adopt(spec, child.pid);
      return child.pid;
    } finally {
      closeSync(fd);
    }
  }

  /** Records a process started by someone else (nginx daemonizes) so it is stopped like ours. */
  adopt(spec: Pick<ProcessSpec, 'name' | 'role' | 'port' | 'url'>, pid: number): void {
    recordProcess(this.stateDir, {
      name: spec.name,
      role: spec.role,
      pid,
      started_at: new Date(this.o.clock.now()).toISOString(),
      owner: this.o.owner,
      ...(spec.port !== undefined ? { port: spec.port } : {}),
      ...(spec.url !== undefined ? { url: spec.url } : {}),
    });
  }

  /** SIGTERM, then SIGKILL once `graceMs` has passed on the clock. */
  async stop(name: string, graceMs = 5_000): Promise<StopOutcome> {
    const pid = this.running(name);
    if (pid === undefined) {
      forgetProcess(this.stateDir, name);
      return 'not_running';
    }
    const gone = () => !isAlive(pid);
    signal(pid, 'SIGTERM');
    const poll = { intervalMs: 25 };
    if (!(await waitFor(gone, { ...poll, timeoutMs: graceMs }, this.o.clock))) {
      signal(pid, 'SIGKILL');
      await waitFor(gone, { ...poll, timeoutMs: AFTER_KILL_MS }, this.o.clock);
    }
    if (!gone()) return 'failed';
    forgetProcess(this.stateDir, name);
    return 'stopped';
  }

  tail(name: string, lines = 20): string {
    const file = this.logFile(name);
    if (!existsSync(file)) return '';
    return readFileSync(file, 'utf8')
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone between the check and the signal
  }
}
