import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { getGlobalDispatcher } from 'undici';
import { type Clock, systemClock, systemExec } from '../../src/cli/context.js';
import { runCli } from '../../src/cli/run.js';
import { trackPid } from './pids.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'dist/bin/ifmesh.js');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function capture(isTTY = false) {
  const stream = new PassThrough() as PassThrough & { isTTY?: boolean };
  stream.isTTY = isTTY;
  let text = '';
  stream.on('data', (d: Buffer) => {
    text += d.toString();
  });
  return { stream, text: () => text };
}

/** Runs the CLI in this process with captured streams: fast, and with an injectable clock. */
export async function run(
  argv: string[],
  opts: {
    cwd?: string;
    env?: Record<string, string | undefined>;
    stdin?: string;
    clock?: Clock;
    tty?: boolean;
  } = {},
): Promise<RunResult> {
  const out = capture(opts.tty);
  const err = capture(opts.tty);
  const code = await runCli(argv, {
    env: opts.env ?? {},
    cwd: opts.cwd ?? ROOT,
    stdin: Readable.from(opts.stdin !== undefined ? [Buffer.from(opts.stdin)] : []),
    stdout: out.stream,
    stderr: err.stream,
    clock: opts.clock ?? systemClock,
    signal: new AbortController().signal,
    exec: systemExec,
    dispatcher: getGlobalDispatcher(),
  });
  await new Promise((r) => setImmediate(r));
  return { code, stdout: out.text(), stderr: err.text() };
}

/** Children keep their temp files under the run's temp root too, where teardown looks for leftovers. */
export function testTmp(): Record<string, string> {
  return process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {};
}

/** Runs the built binary as a user would (global setup builds dist/ first). */
export function spawnCli(
  argv: string[],
  opts: {
    cwd?: string;
    env?: Record<string, string>;
    stdin?: string;
    timeoutMs?: number;
    /** Called with all of stdout so far, each time more arrives (for tests that act on a running command). */
    onStdout?: (soFar: string) => void;
  } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BIN, ...argv],
      {
        cwd: opts.cwd ?? ROOT,
        env: { PATH: process.env.PATH ?? '', ...testTmp(), ...opts.env },
        timeout: opts.timeoutMs ?? 20_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    trackPid(child.pid);
    if (opts.onStdout) {
      let soFar = '';
      child.stdout?.on('data', (chunk: Buffer | string) => {
        soFar += chunk.toString();
        opts.onStdout?.(soFar);
      });
    }
    child.stdin?.end(opts.stdin ?? '');
  });
}

/** A writable copy of fixtures/ in a fresh temp dir; removed by the returned cleanup. */
export function fixtureDir(): { dir: string; cleanup: () => void } {
  const made = tempDir();
  cpSync(path.join(ROOT, 'fixtures'), path.join(made.dir, 'fixtures'), { recursive: true });
  return made;
}

/** The test file that called us, so that global teardown's list of leftovers names the culprit. */
function callerTestFile(): string {
  const m = /([\w.-]+)\.test\.ts/.exec(new Error().stack ?? '');
  return m ? m[1]! : 'helper';
}

/** A fresh temp dir (under the run's own temp root, see leak-guard.ts); removed by `cleanup`. */
/**
 * `dir/name`, made: a state directory as a fleet's is, before a command that operates the fleet
 * names it (they refuse an explicit --state-dir that does not exist; only up, deploy and a few
 * others make one).
 */
export function stateDir(dir: string, name = 'state'): string {
  const at = path.join(dir, name);
  mkdirSync(at, { recursive: true });
  return at;
}

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `ifmesh-test-${callerTestFile()}-`));
  // Retries: a process being stopped may still be writing its last log line into the directory.
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true, maxRetries: 5 }) };
}
