import { Redis } from 'ioredis';
import { type ServerProcess, startServerProcess } from './server-process.js';

export interface RedisServerOptions {
  port: number;
  /** Working directory (redis-server writes nothing there with persistence off, but needs one). */
  dir: string;
  host?: string;
  binary?: string;
  /** Detach from this process (for `ifmesh up`), so Redis outlives the command that started it. */
  detached?: boolean;
}

export interface RunningRedis extends ServerProcess {
  url: string;
}

export function redisServerArgs(o: RedisServerOptions): string[] {
  return [
    '--port',
    String(o.port),
    '--bind',
    o.host ?? '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    o.dir,
    '--daemonize',
    'no',
    '--protected-mode',
    'yes',
  ];
}

/** PINGs `url` once; true when Redis answers within `timeoutMs`. */
export async function pingRedis(url: string, timeoutMs = 1_000): Promise<boolean> {
  const r = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** Starts redis-server and waits until it answers PING. */
export async function startRedisServer(o: RedisServerOptions, timeoutMs = 10_000): Promise<RunningRedis> {
  const url = `redis://${o.host ?? '127.0.0.1'}:${o.port}`;
  const server = await startServerProcess({
    name: 'redis-server',
    command: o.binary ?? 'redis-server',
    args: redisServerArgs(o),
    debianPackage: 'redis-server',
    stdio: o.detached ? 'ignore' : 'pipe',
    detached: o.detached,
    logLimit: 20_000,
    ready: () => pingRedis(url, 500),
    timeoutMs,
    intervalMs: 50,
    notReady: `redis-server did not start on ${url}`,
    logTail: 500,
    stopGraceMs: 2_000,
  });
  return { ...server, url };
}
