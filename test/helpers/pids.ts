import { appendFileSync } from 'node:fs';

/**
 * Records a pid this test run started. Global teardown kills whatever is still alive, so a test
 * that times out (and skips its `finally`) still leaves no process behind.
 */
export function trackPid(pid: number | undefined): void {
  const file = process.env.IFMESH_TEST_PIDS;
  if (file && pid) appendFileSync(file, `${pid}\n`);
}
