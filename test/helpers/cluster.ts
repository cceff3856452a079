import { randomUUID } from 'node:crypto';
import { RedisCluster } from '../../src/services/signaling/redis-cluster.js';
import { type RunningSignaling, startSignaling } from './signaling.js';
import { waitForValue } from './wait.js';

/**
 * waitForValue for checks that may throw while the system recovers (a fetch during an outage):
 * a throw or a falsy value both mean "not yet".
 */
export function until<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<T> {
  return waitForValue(
    async () => {
      try {
        return (await check()) || undefined;
      } catch {
        return undefined;
      }
    },
    what,
    { timeoutMs, intervalMs },
  );
}

export interface ClusterInstance extends RunningSignaling {
  cluster: RedisCluster;
  /** What the instance logged. */
  logs: { level: string; msg: string; fields?: Record<string, unknown> }[];
}

/** The cluster secret test instances share (SIGNALING_CLUSTER_SECRET). */
export const CLUSTER_SECRET = 'test-cluster-secret';

/** A signaling instance in-process, sharing the mesh through `redisUrl` under `prefix`. */
export async function startClusterInstance(
  redisUrl: string,
  prefix: string,
  instanceId = `i-${randomUUID().slice(0, 8)}`,
  ttlMs = 6_000,
  secret: string = CLUSTER_SECRET,
): Promise<ClusterInstance> {
  const cluster = new RedisCluster({
    url: redisUrl,
    prefix,
    instanceId,
    ttlMs,
    connectWaitMs: 5_000,
    secret,
  });
  const logs: ClusterInstance['logs'] = [];
  const sig = await startSignaling({
    instanceId,
    cluster,
    registry: cluster.registry,
    relay: cluster.relay,
    log: (level, msg, fields) => logs.push({ level, msg, ...(fields ? { fields } : {}) }),
  });
  return { ...sig, cluster, logs };
}
