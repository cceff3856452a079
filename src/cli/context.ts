import { execFile } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Clock } from '../util/clock.js';

export { type Clock, systemClock, type TimerHandle } from '../util/clock.js';

export interface ExecResult {
  /** The exit code; null when the program was killed (by the timeout or a signal). */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Killed (SIGKILL) after this long; every external program has a bound. */
  timeoutMs: number;
  cwd?: string;
  env?: Record<string, string | undefined>;
}

/**
 * Runs an external program (execFile: no shell). Resolves whatever the exit code; rejects only
 * when the program cannot be started at all (ENOENT: not installed).
 */
export type Exec = (file: string, args: string[], opts: ExecOptions) => Promise<ExecResult>;

export type OutStream = Writable & { isTTY?: boolean };

/** All the I/O a command may do. bin/ builds the real one; tests build their own. */
export interface Context {
  env: Record<string, string | undefined>;
  cwd: string;
  stdin: Readable;
  stdout: OutStream;
  stderr: OutStream;
  clock: Clock;
  signal: AbortSignal;
  exec: Exec;
  /** Every HTTP call goes through it: undici's global one for real, a MockAgent where a remote cannot run. */
  dispatcher: Dispatcher;
}

export const systemExec: Exec = (file, args, opts) =>
  new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        cwd: opts.cwd,
        env: opts.env as NodeJS.ProcessEnv | undefined,
        timeout: opts.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
        if (e && typeof e.code === 'string') return reject(e);
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr });
      },
    );
  });
