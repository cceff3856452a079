import { randomUUID } from 'node:crypto';
import { RedisCluster } from '../../src/services/signaling/redis-cluster.js';
import { type RunningSignaling, startSignaling } from './signaling.js';

/** Polls `check` until it holds; fails naming `what` after `timeoutMs`. A condition, never a sleep. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface ClusterInstance extends RunningSignaling {
  cluster: RedisCluster;
}

/** A signaling instance in-process, sharing the mesh through `redisUrl` under `prefix`. */
export async function startClusterInstance(
  redisUrl: string,
  prefix: string,
  instanceId = `i-${randomUUID().slice(0, 8)}`,
  ttlMs = 3_000,
): Promise<ClusterInstance> {
  const cluster = new RedisCluster({ url: redisUrl, prefix, instanceId, ttlMs, connectWaitMs: 5_000 });
  const sig = await startSignaling({ instanceId, cluster, registry: cluster.registry, relay: cluster.relay });
  return { ...sig, cluster };
}
