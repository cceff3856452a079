import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/cli.js';
import { trackPid } from '../helpers/pids.js';

// The suite's global teardown (test/helpers/leak-guard.ts) must fail a run that leaves a process
// or a temp directory behind. This runs vitest on a temporary config (written to a temp dir, never
// part of the suite) whose only test leaks both, and checks that run fails and names them.
describe('global teardown', () => {
  it('fails a run whose test leaves processes (recorded or not) and a temp directory behind', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const guard = path.join(ROOT, 'test/helpers/leak-guard.ts');
      const pids = path.join(ROOT, 'test/helpers/pids.ts');
      writeFileSync(
        path.join(dir, 'leaky.test.ts'),
        `import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { trackPid } from ${JSON.stringify(pids)};
it('leaks', () => {
  mkdtempSync(path.join(os.tmpdir(), 'forgotten-'));
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' });
  trackPid(child.pid);
  child.unref();
  // Not recorded, as a process started by \`ifmesh up\` would not be: found by its TMPDIR.
  const stray = spawn(process.execPath, ['-e', 'setInterval(() => {}, 999)'], { detached: true, stdio: 'ignore' });
  stray.unref();
});
`,
      );
      // No imports: this config lives outside the repository, where 'vitest/config' does not resolve.
      writeFileSync(
        path.join(dir, 'leaky.config.mjs'),
        `export default { test: { root: ${JSON.stringify(dir)}, include: ['leaky.test.ts'], globals: true, globalSetup: [${JSON.stringify(guard)}] } };\n`,
      );
      const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = execFile(
          process.execPath,
          [
            path.join(ROOT, 'node_modules/vitest/vitest.mjs'),
            'run',
            '--config',
            path.join(dir, 'leaky.config.mjs'),
          ],
          { cwd: ROOT, timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } },
          (error, stdout, stderr) =>
            resolve({
              code: error ? (typeof error.code === 'number' ? error.code : -1) : 0,
              out: stdout + stderr,
            }),
        );
        trackPid(child.pid);
      });
      expect(result.out).toContain('1 passed');
      expect(result.code).not.toBe(0);
      expect(result.out).toMatch(/process \d+ still running: .*setInterval\(\(\) => \{\}, 1000\)/);
      expect(result.out).toMatch(/process \d+ still running: .*setInterval\(\(\) => \{\}, 999\)/);
      expect(result.out).toMatch(/left in the temp dir: forgotten-/);
    } finally {
      cleanup();
    }
  });
});
