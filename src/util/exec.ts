// External programs, run through the context (ctx.exec) so that every call has a timeout and a
// test can see what ran.
import { execFile } from 'node:child_process';

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
