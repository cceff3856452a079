import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { guardLeaks } from './leak-guard.js';

// e2e tests run the built binary, so build it once from the current sources.
export default function setup(): () => void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', root], {
    stdio: 'inherit',
  });
  // tsc rewrites the file without its exec bit; npx runs the bin directly.
  chmodSync(path.join(root, 'dist/bin/ifmesh.js'), 0o755);
  return guardLeaks();
}
