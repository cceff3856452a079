import { describe, expect, it } from 'vitest';
import { systemExec } from '../../src/util/exec.js';

describe('the context’s exec', () => {
  it('returns the exit code and output, kills a program that outlives its timeout, and rejects a missing one', async () => {
    expect(await systemExec('sh', ['-c', 'echo out; echo err >&2; exit 3'], { timeoutMs: 10_000 })).toEqual({
      code: 3,
      stdout: 'out\n',
      stderr: 'err\n',
    });
    // `exec` replaces the shell, so the timeout's SIGKILL reaches the sleeping program itself.
    const slow = await systemExec('sh', ['-c', 'exec sleep 30'], { timeoutMs: 200 });
    expect(slow.code).toBeNull();
    await expect(systemExec('ifmesh-no-such-program', [], { timeoutMs: 1_000 })).rejects.toMatchObject({
      code: 'ENOENT',
    });
  });
});
