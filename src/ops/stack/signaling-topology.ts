// How `up` and `deploy` arrange several signaling instances so the mesh never splits. With Redis
// (a configured SIGNALING_CLUSTER_URL, or Debian's redis-server to start), every instance is active
// behind nginx `least_conn` and they share the registry. Without it instances share nothing, so one
// is active and the others are hot standbys: nginx `backup`, and listed after the active one in the
// agents' signaling URLs, so every agent is always on the same instance.
import { redactRedisUrl, redisServerArgs } from '../../exec/redis.js';
import type { ProcessSpec } from '../fleet/supervisor.js';

export type SignalingMode = 'redis' | 'standby' | 'single';

export interface SignalingTopology {
  mode: SignalingMode;
  /** The Redis the instances share (mode "redis"), password redacted in `shown`. */
  redis: { url: string; shown: string; start: boolean } | null;
  /** nginx upstream servers: every instance (redis), or the first with the rest as `backup`. */
  nginx: { upstreams: number[]; backups: number[] };
  /** Extra `ifmesh signaling serve` arguments for every instance (never a credential). */
  serveArgs: string[];
  /**
   * Environment every instance gets: SIGNALING_CLUSTER_URL, password included. The supervisor keeps
   * its value in the secrets file and only its name in the process record; argv stays clean.
   */
  serveEnv: Record<string, string>;
  /** The agents' signaling URLs, in failover order. */
  agentUrls: string[];
}

/**
 * Pure: the topology for `instances` (ports, in order), given a Redis URL (configured, or one `up`/
 * `deploy` starts) or none, and nginx's front-door URL if nginx runs.
 */
export function planSignalingTopology(o: {
  instances: number[];
  redis: { url: string; start: boolean } | null;
  frontDoor: string | null;
}): SignalingTopology {
  const direct = o.instances.map((p) => `ws://127.0.0.1:${p}`);
  const front = o.frontDoor ? [o.frontDoor] : [];
  if (o.redis) {
    return {
      mode: 'redis',
      redis: { ...o.redis, shown: redactRedisUrl(o.redis.url) },
      nginx: { upstreams: o.instances, backups: [] },
      serveArgs: [],
      serveEnv: { SIGNALING_CLUSTER_URL: o.redis.url },
      agentUrls: [...front, ...direct],
    };
  }
  return {
    mode: o.instances.length > 1 ? 'standby' : 'single',
    redis: null,
    nginx: { upstreams: o.instances.slice(0, 1), backups: o.instances.slice(1) },
    serveArgs: [],
    serveEnv: {},
    agentUrls: [...front, ...direct],
  };
}

/**
 * The local redis-server `up`/`deploy` start: loopback, no persistence (instances rebuild it), its
 * password in `configFile` (0600, written by localRedisAuth), so none is on its command line.
 */
export function redisProcessSpec(name: string, port: number, dir: string, configFile: string): ProcessSpec {
  return {
    name,
    role: 'redis',
    port,
    command: 'redis-server',
    args: redisServerArgs({ port, dir, host: '127.0.0.1', configFile }),
  };
}

/** What `status` says about a stack's signaling, from what it recorded. */
export function signalingMode(instances: number, redis: boolean): SignalingMode {
  return redis ? 'redis' : instances > 1 ? 'standby' : 'single';
}
