import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// e2e tests run the built binary, so build it once from the current sources.
export default function setup(): () => void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', root], {
    stdio: 'inherit',
  });
  // tsc rewrites the file without its exec bit; npx runs the bin directly.
  chmodSync(path.join(root, 'dist/bin/ifmesh.js'), 0o755);
  // Workers inherit this and record every process they start (test/helpers/pids.ts).
  const pids = path.join(os.tmpdir(), `ifmesh-test-pids-${process.pid}.txt`);
  process.env.IFMESH_TEST_PIDS = pids;
  return () => {
    if (!existsSync(pids)) return;
    for (const line of readFileSync(pids, 'utf8').split('\n')) {
      const pid = Number(line);
      if (!pid) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone: the test stopped it
      }
    }
    rmSync(pids, { force: true });
  };
}
