// The failure paths of src/exec/server-process.ts, through startRedisServer as `ifmesh up` uses it:
// a binary that is not there, and a server that exits before it ever answers.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UnreachableError } from '../../src/errors.js';
import { startRedisServer } from '../../src/exec/redis.js';
import { requireBinary } from '../helpers/binaries.js';
import { freePort } from '../helpers/processes.js';

describe('starting an external server', () => {
  it('names the Debian package when the binary cannot be started', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ifmesh-srvproc-'));
    try {
      const err = await startRedisServer({
        port: await freePort(),
        dir,
        binary: path.join(dir, 'no-such-redis-server'),
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnreachableError);
      expect((err as UnreachableError).message).toBe('redis-server could not be started');
      expect((err as UnreachableError).hint).toBe('apt-get install redis-server');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails with the end of the server log when the server exits before it answers', async () => {
    requireBinary('redis-server', 'redis-server');
    const dir = mkdtempSync(path.join(tmpdir(), 'ifmesh-srvproc-'));
    try {
      const port = await freePort();
      // redis-server cannot use a missing --dir and exits at once, saying why on stdout.
      const err = await startRedisServer({ port, dir: path.join(dir, 'missing') }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnreachableError);
      expect((err as Error).message).toMatch(
        new RegExp(
          `^redis-server did not start on redis://127\\.0\\.0\\.1:${port}: [\\s\\S]*No such file or directory`,
        ),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
