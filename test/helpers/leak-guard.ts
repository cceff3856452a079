import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTicks } from './pids.js';

function stillRunning(pid: number, ticks: string): boolean {
  const now = startTicks(pid);
  // Gone, or the pid now belongs to an unrelated process started later.
  if (now === null || ticks === '-' || now !== ticks) return false;
  try {
    // A zombie has exited; its parent (a worker) just has not reaped it yet.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function describeProcess(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim().slice(0, 160);
  } catch {
    return '?';
  }
}

/** The parent pid of `pid` (0 when it is gone), from /proc/<pid>/stat. */
export function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/**
 * Processes that inherited this run's TMPDIR: whatever the tests started, directly or through
 * ifmesh (`up` and `deploy` start detached processes that no pid record names), apart from the
 * runner itself and its workers.
 */
function processesOfRun(tmp: string): number[] {
  const marker = Buffer.from(`\0TMPDIR=${tmp}\0`);
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!pid || pid === process.pid || parentOf(pid) === process.pid) continue;
    try {
      const env = Buffer.concat([Buffer.from('\0'), readFileSync(`/proc/${pid}/environ`), Buffer.from('\0')]);
      if (env.includes(marker)) found.push(pid);
    } catch {
      // gone, or another user's process
    }
  }
  return found;
}

/**
 * Gives this run a temp root of its own (several engineers run the suite at once on one machine,
 * so the shared /tmp is not ours to scan): workers and the processes they spawn inherit TMPDIR
 * pointing into it, and IFMESH_TEST_PIDS naming the pid record of test/helpers/pids.ts.
 *
 * The returned teardown FAILS the run if a test left a process alive (a recorded one, or any
 * that inherited this run's TMPDIR; each is killed) or anything in the temp root (listed, then
 * removed). test/integration/leak-guard.test.ts proves it:
 * it runs vitest on a temporary config whose only test deliberately leaks a process and a temp
 * directory, and checks that run exits non-zero naming both.
 */
export function guardLeaks(): () => void {
  const root = mkdtempSync(path.join(os.tmpdir(), 'ifmesh-run-'));
  const tmp = path.join(root, 'tmp');
  mkdirSync(tmp);
  const pids = path.join(root, 'pids.txt');
  process.env.TMPDIR = tmp;
  process.env.IFMESH_TEST_PIDS = pids;
  return () => {
    const problems: string[] = [];
    const leaked = new Set<number>();
    if (existsSync(pids)) {
      for (const line of readFileSync(pids, 'utf8').split('\n')) {
        const [pidText, ticks = '-'] = line.split(' ');
        const pid = Number(pidText);
        if (pid && stillRunning(pid, ticks)) leaked.add(pid);
      }
    }
    for (const pid of processesOfRun(tmp)) if (stillRunning(pid, startTicks(pid) ?? '-')) leaked.add(pid);
    for (const pid of leaked) {
      problems.push(`process ${pid} still running: ${describeProcess(pid)}`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited between the check and the kill
      }
    }
    for (const name of readdirSync(tmp)) problems.push(`left in the temp dir: ${name}`);
    rmSync(root, { recursive: true, force: true, maxRetries: 3 });
    if (problems.length > 0) {
      process.exitCode = 1;
      throw new Error(`tests left things behind:\n  ${problems.join('\n  ')}`);
    }
  };
}

export default guardLeaks;
