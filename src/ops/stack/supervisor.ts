// Local processes of a stack: started detached with their output in <state>/logs/<name>.log, their
// pid in <state>/run/<name>.pid, stopped by pid. A pid file whose process is gone is stale.
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { isAlive } from '../../exec/pid.js';

export { isAlive };

export interface ProcessSpec {
  name: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
}

export class Supervisor {
  constructor(readonly stateDir: string) {}

  logFile(name: string): string {
    return path.join(this.stateDir, 'logs', `${name}.log`);
  }

  private pidFile(name: string): string {
    return path.join(this.stateDir, 'run', `${name}.pid`);
  }

  /** The recorded pid, if its process still runs; a stale pid file is removed. */
  running(name: string): number | undefined {
    const file = this.pidFile(name);
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) return pid;
    rmSync(file, { force: true });
    return undefined;
  }

  start(spec: ProcessSpec): number {
    mkdirSync(path.join(this.stateDir, 'logs'), { recursive: true });
    mkdirSync(path.join(this.stateDir, 'run'), { recursive: true });
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
      writeFileSync(this.pidFile(spec.name), `${child.pid}\n`);
      return child.pid;
    } finally {
      closeSync(fd);
    }
  }

  /** Records a process started by someone else (nginx daemonizes) so it is stopped like ours. */
  adopt(name: string, pid: number): void {
    mkdirSync(path.join(this.stateDir, 'run'), { recursive: true });
    writeFileSync(this.pidFile(name), `${pid}\n`);
  }

  /** Every process with a pid file, running or not. */
  names(): string[] {
    const dir = path.join(this.stateDir, 'run');
    return existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => f.endsWith('.pid'))
          .map((f) => f.slice(0, -4))
      : [];
  }

  /** SIGTERM, then SIGKILL after `graceMs`; true when the process is gone. */
  async stop(name: string, graceMs = 5_000): Promise<boolean> {
    const pid = this.running(name);
    if (pid === undefined) return true;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    const deadline = Date.now() + graceMs;
    while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    if (isAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone between the check and the kill
      }
      for (let i = 0; i < 40 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 25));
    }
    rmSync(this.pidFile(name), { force: true });
    return !isAlive(pid);
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
