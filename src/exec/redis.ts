// redis-server (Debian's `redis-server`) on loopback, the store signaling instances share in a
// cluster. Run without persistence: the registry is rebuilt from the instances' live sockets
// whenever Redis restarts, so there is nothing on disk worth keeping.
import { type ChildProcess, spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { UnreachableError } from '../errors.js';

export interface RedisServerOptions {
  port: number;
  /** Working directory (redis-server writes nothing there with persistence off, but needs one). */
  dir: string;
  host?: string;
  binary?: string;
  /** Detach from this process (for `ifmesh up`), so Redis outlives the command that started it. */
  detached?: boolean;
}

export interface RunningRedis {
  pid: number;
  url: string;
  child: ChildProcess;
  log: () => string;
  stop(): Promise<void>;
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
  const child = spawn(o.binary ?? 'redis-server', redisServerArgs(o), {
    stdio: o.detached ? 'ignore' : ['ignore', 'pipe', 'pipe'],
    detached: o.detached ?? false,
  });
  let log = '';
  const keep = (d: Buffer) => {
    log = (log + d.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('spawn', () => resolve(true));
    child.once('error', () => resolve(false));
  });
  if (!spawned)
    throw new UnreachableError('redis-server could not be started', 'apt-get install redis-server');
  if (o.detached) child.unref();
  const url = `redis://${o.host ?? '127.0.0.1'}:${o.port}`;
  const deadline = Date.now() + timeoutMs;
  while (!(await pingRedis(url, 500))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new UnreachableError(`redis-server did not start on ${url}: ${log.slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    pid: child.pid!,
    url,
    child,
    log: () => log,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 2_000);
      await exited;
      clearTimeout(t);
    },
  };
}
