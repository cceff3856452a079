import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type RunningRedis, startRedisServer } from '../../src/exec/redis.js';
import { requireBinary } from './binaries.js';
import { trackPid } from './pids.js';
import { freePort } from './processes.js';

export interface TestRedis extends RunningRedis {
  port: number;
  /** Stops this redis-server and starts a fresh (empty) one on the same port. */
  restart(): Promise<TestRedis>;
  /** After stop(): a fresh (empty) redis-server on the same port and dir. */
  resume(): Promise<TestRedis>;
  /** Stops it and removes its temp dir. */
  cleanup(): Promise<void>;
}

/**
 * A real redis-server on a loopback port from a temp dir, no persistence; stopped by pid. With a
 * `password` (in a 0600 config file in the temp dir, as `up` does it) `url` carries it.
 */
export async function startRedis(port?: number, dir?: string, password?: string): Promise<TestRedis> {
  requireBinary('redis-server', 'redis-server');
  const p = port ?? (await freePort());
  const d = dir ?? mkdtempSync(path.join(tmpdir(), 'ifmesh-redis-'));
  const r = await startRedisServer({ port: p, dir: d, password });
  trackPid(r.pid);
  return {
    ...r,
    port: p,
    restart: async () => {
      await r.stop();
      return startRedis(p, d, password);
    },
    resume: () => startRedis(p, d, password),
    cleanup: async () => {
      await r.stop();
      rmSync(d, { recursive: true, force: true });
    },
  };
}

export { freePortRange } from '../../src/ops/stack/stack.js';
