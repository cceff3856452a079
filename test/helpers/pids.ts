import { appendFileSync, readFileSync } from 'node:fs';

/** Start time of a process in clock ticks since boot (/proc/PID/stat field 22), or null if gone. */
export function startTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * Records a pid this test run started, with its start time so that global teardown can tell it
 * from an unrelated process that later got the same pid. Teardown fails the run if any recorded
 * process is still alive (and kills it), so a test that forgets to stop one is caught.
 */
export function trackPid(pid: number | undefined): void {
  const file = process.env.IFMESH_TEST_PIDS;
  if (file && pid) appendFileSync(file, `${pid} ${startTicks(pid) ?? '-'}\n`);
}
