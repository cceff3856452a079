// A command run in a real terminal (a detached tmux session), read as a person would see it: the
// visible pane, not the bytes written. Live views (ink) redraw in place, so the pane shows the
// latest frame and never a stack of copies.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { requireBinary } from './binaries.js';
import { BIN, testTmp } from './cli.js';
import { waitFor } from './wait.js';

export interface Terminal {
  /** What the pane shows now, trailing blank lines trimmed. */
  screen(): string;
  /** Waits until `cond` holds for the pane, and returns the pane it held for. */
  until(cond: (screen: string) => boolean, what: string, timeoutMs?: number): Promise<string>;
  /** The command's exit code once it has ended (waits for it). */
  exitCode(timeoutMs?: number): Promise<number>;
  /** Sends keys (tmux send-keys syntax: 'C-c' is Ctrl-C). */
  keys(...keys: string[]): void;
  kill(): void;
}

let sessions = 0;

/**
 * Runs `ifmesh <args>` in a tmux pane of `cols`×`rows` in `cwd`, with `env` (CI unset: a terminal
 * session of a person). The pane stays after the command ends; its exit code is written to a file
 * next to `cwd`'s contents, read by `exitCode()`. `kill()` ends the session (call it in `finally`).
 */
export function terminal(
  args: string[],
  o: { cwd: string; env?: Record<string, string>; cols?: number; rows?: number },
): Terminal {
  requireBinary('tmux', 'tmux');
  const session = `ifmesh-${process.pid}-${++sessions}`;
  const codeFile = path.join(o.cwd, `.${session}.exit`);
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const env = Object.entries({ PATH: process.env.PATH ?? '', ...testTmp(), ...o.env })
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join(' ');
  const command = [process.execPath, BIN, ...args].map(quote).join(' ');
  execFileSync('tmux', [
    'new-session',
    '-d',
    '-s',
    session,
    '-x',
    String(o.cols ?? 200),
    '-y',
    String(o.rows ?? 50),
    `cd ${quote(o.cwd)} && env -i TERM=xterm-256color ${env} ${command}; echo $? > ${quote(codeFile)}; sleep 600`,
  ]);
  const screen = () =>
    execFileSync('tmux', ['capture-pane', '-p', '-t', session]).toString().replace(/\s+$/, '');
  return {
    screen,
    async until(cond, what, timeoutMs = 60_000) {
      let shown = '';
      try {
        await waitFor(
          () => {
            shown = screen();
            return cond(shown);
          },
          what,
          { timeoutMs, intervalMs: 30 },
        );
      } catch (err) {
        throw new Error(`${(err as Error).message}; the pane shows:\n${shown}`);
      }
      return shown;
    },
    async exitCode(timeoutMs = 60_000) {
      let text = '';
      await waitFor(
        () => {
          text = existsSync(codeFile) ? readFileSync(codeFile, 'utf8').trim() : '';
          return text !== '';
        },
        'the command in the terminal to end',
        { timeoutMs },
      );
      return Number(text);
    },
    keys: (...keys) => execFileSync('tmux', ['send-keys', '-t', session, ...keys]),
    kill() {
      execFileSync('tmux', ['kill-session', '-t', session]);
      rmSync(codeFile, { force: true });
    },
  };
}
