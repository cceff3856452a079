import { appendFileSync } from 'node:fs';
import { startTicks } from '../../src/exec/pid.js';

export { startTicks };

/**
 * Records a pid this test run started, with its start time so that global teardown can tell it
 * from an unrelated process that later got the same pid. Teardown fails the run if any recorded
 * process is still alive (and kills it), so a test that forgets to stop one is caught.
 */
export function trackPid(pid: number | undefined): void {
  const file = process.env.IFMESH_TEST_PIDS;
  if (file && pid) appendFileSync(file, `${pid} ${startTicks(pid) ?? '-'}\n`);
}
