// A reader that stops early: `ifmesh … | head -1` must end quietly with exit 0, like `git log | head`,
// never with an unhandled EPIPE stack trace (issue 25.3). Every command's --help is run with its stdout
// already closed, so every write it makes fails with EPIPE.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { type CommandIo, commands } from '../../src/cli/registry.js';
import { BIN, tempDir, testTmp } from '../helpers/cli.js';
import { trackPid } from '../helpers/pids.js';

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs the binary with its stdout closed before it starts: its first write gets EPIPE. */
function runWithClosedStdout(argv: string[]): Promise<Ended> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...argv], {
      env: { PATH: process.env.PATH ?? '', ...testTmp() },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 20_000,
    });
    trackPid(child.pid);
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

/** Runs a shell pipeline and returns the exit status of its first command (PIPESTATUS[0]). */
function firstStatus(pipeline: string): Promise<{ status: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `${pipeline}; echo "status=\${PIPESTATUS[0]}" >&2`], {
      env: { PATH: process.env.PATH ?? '', ...testTmp() },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 30_000,
    });
    trackPid(child.pid);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', () => {
      const m = /status=(\d+)/.exec(stderr);
      resolve({ status: m ? Number(m[1]) : -1, stderr: stderr.replace(/status=\d+\n?/, '') });
    });
  });
}

/** Every runnable command path in the registry, as argv ("witness query" -> ['witness', 'query']). */
async function leafCommands(): Promise<string[][]> {
  const io = {} as CommandIo;
  const leaves: string[][] = [];
  for (const entry of commands) {
    const cmd = new Command(entry.name);
    (await entry.load()).register(cmd, io);
    if (cmd.commands.length === 0) leaves.push([entry.name]);
    for (const sub of cmd.commands) leaves.push([entry.name, sub.name()]);
  }
  return leaves;
}

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('stdout closed by the reader', () => {
  it('every command --help ends with exit 0 and no stack trace', async () => {
    const argvs = [['--help'], ['--version'], ...(await leafCommands()).map((c) => [...c, '--help'])];
    const failures: string[] = [];
    // Four at a time: enough to finish quickly, few enough not to starve a busy machine.
    for (let i = 0; i < argvs.length; i += 4) {
      const batch = argvs.slice(i, i + 4);
      const ended = await Promise.all(batch.map((argv) => runWithClosedStdout(argv)));
      ended.forEach((e, j) => {
        if (e.code !== 0 || e.stderr.trim())
          failures.push(
            `ifmesh ${batch[j]!.join(' ')}: exit ${e.code ?? e.signal}; ${e.stderr.split('\n')[0]}`,
          );
      });
    }
    expect(failures).toEqual([]);
    expect(argvs.length).toBeGreaterThan(60);
    // A bound, not a speed assertion: each --help loads its command's module (werift, SQLite…).
  }, 240_000);

  it('logs -n 200000 | head -1 ends with exit 0 and prints nothing on stderr', async () => {
    const state = path.join(tmp.dir, 'state');
    mkdirSync(path.join(state, 'logs'), { recursive: true });
    const lines = Array.from({ length: 200_000 }, (_, i) => `line ${i} of a long signaling log`);
    writeFileSync(path.join(state, 'logs', 'signaling-1.log'), `${lines.join('\n')}\n`);
    for (let i = 0; i < 3; i++) {
      const r = await firstStatus(
        `'${process.execPath}' '${BIN}' logs -n 200000 --state-dir '${state}' signaling-1 | head -1`,
      );
      expect(r, `run ${i + 1}`).toEqual({ status: 0, stderr: '' });
    }
  });
});
