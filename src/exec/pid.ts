import { readFileSync } from 'node:fs';

/**
 * Whether a process with this pid exists and has not exited (EPERM: it does, but is not ours). A
 * zombie — exited, waiting for a parent that never reaps it — counts as gone: it holds no port and
 * no file, and no signal will ever make it go away.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !isZombie(pid);
}

/** /proc/PID/stat's state field (after the command name, which may itself hold ") "). */
export function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return false;
  }
}

/**
 * When a process started, in clock ticks since boot (/proc/PID/stat field 22), or null when it is
 * gone: with its pid, what tells a process from a later one that was given the same pid.
 */
export function startTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}
