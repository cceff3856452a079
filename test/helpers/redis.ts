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

/**
 * `n` consecutive free loopback ports below the kernel's ephemeral range, so that no outgoing
 * connection (an instance's link to Redis, say) can take one of them between now and their use.
 */
export async function freePortRange(n: number): Promise<number> {
  const { createServer } = await import('node:net');
  const canBind = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 200; attempt++) {
    const start = 20_000 + Math.floor(Math.random() * 12_000);
    let ok = true;
    for (let p = start; p < start + n && ok; p++) ok = await canBind(p);
    if (ok) return start;
  }
  throw new Error(`no ${n} consecutive free ports between 20000 and 32000`);
}
