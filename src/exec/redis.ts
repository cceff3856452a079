import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { writeFileWhole } from '../state/json-file.js';
import { type ServerProcess, startServerProcess } from './server-process.js';

export interface RedisServerOptions {
  port: number;
  /** Working directory (redis-server writes nothing there with persistence off, but needs one). */
  dir: string;
  host?: string;
  binary?: string;
  /** Detach from this process (for `ifmesh up`), so Redis outlives the command that started it. */
  detached?: boolean;
  /**
   * The default user's password. It goes into a 0600 config file (`configFile`), never onto the
   * command line, where `ps` and /proc/<pid>/cmdline show it to every local user.
   */
  password?: string | undefined;
  /** Where the secret part of the configuration is written (default `<dir>/redis-<port>.conf`). */
  configFile?: string | undefined;
}

export interface RunningRedis extends ServerProcess {
  /** redis:// URL, with the password when there is one (keep it out of logs: see redactRedisUrl). */
  url: string;
}

/** The config file holding what must not be on a command line: the password. */
export function redisConfigFile(o: Pick<RedisServerOptions, 'dir' | 'port' | 'configFile'>): string {
  return o.configFile ?? path.join(o.dir, `redis-${o.port}.conf`);
}

/**
 * The secret part of redis-server's configuration. Redis reads a config file named as its first
 * argument, then the options after it, so the non-secret options stay visible in `ps` (useful when
 * looking at a host) while the password sits in a file only its owner reads.
 */
export function redisSecretConfig(password: string): string {
  // Redis config strings are double-quoted with backslash escapes.
  const quoted = `"${password.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  return [
    '# Written by ifmesh: the password of the default user. Keep this file 0600.',
    `requirepass ${quoted}`,
    '',
  ].join('\n');
}

/** Writes the config file whole (tmp, fsync, rename), readable by its owner only. */
export function writeRedisConfig(file: string, password: string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileWhole(file, redisSecretConfig(password), 0o600);
  chmodSync(file, 0o600);
}

/** redis-server's arguments: the config file with the secrets first (when there is one), then the rest. */
export function redisServerArgs(
  o: Pick<RedisServerOptions, 'port' | 'dir' | 'host' | 'configFile'>,
): string[] {
  return [
    ...(o.configFile !== undefined ? [o.configFile] : []),
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

/** A redis:// URL for a local server, with the password when there is one. */
export function redisUrl(host: string, port: number, password?: string): string {
  return `redis://${password !== undefined ? `:${encodeURIComponent(password)}@` : ''}${host}:${port}`;
}

/** A Redis URL without its credentials, for logs, plans and process records. */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/[^/@]*@/, '//<redacted>@');
}

/** What a Redis at `url` says to PING: PONG, an authentication refusal, or nothing. */
export async function probeRedis(url: string, timeoutMs = 1_000): Promise<'ok' | 'auth' | 'down'> {
  const r = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    retryStrategy: () => null,
  });
  // A refused AUTH at connect surfaces as an 'error' event, the connect itself as "closed".
  let refused = false;
  const auth = (err: unknown) => /^(NOAUTH|WRONGPASS|NOPERM)/.test((err as Error)?.message ?? '');
  r.on('error', (err) => {
    refused ||= auth(err);
  });
  try {
    await r.connect();
    return (await r.ping()) === 'PONG' ? 'ok' : 'down';
  } catch (err) {
    // NOAUTH (no password given), WRONGPASS (wrong user or password), NOPERM (an ACL user without PING).
    return refused || auth(err) ? 'auth' : 'down';
  } finally {
    r.disconnect();
  }
}

/**
 * Whether Redis answers at `url` within `timeoutMs`. An authentication refusal counts as an answer:
 * health checks probe with the password-free URL a process record keeps, and a server that refuses
 * them is up. Use probeRedis to tell a wrong password from a dead server.
 */
export async function pingRedis(url: string, timeoutMs = 1_000): Promise<boolean> {
  return (await probeRedis(url, timeoutMs)) !== 'down';
}

/** Starts redis-server and waits until it answers PING (with the password, when there is one). */
export async function startRedisServer(o: RedisServerOptions, timeoutMs = 10_000): Promise<RunningRedis> {
  const url = redisUrl(o.host ?? '127.0.0.1', o.port, o.password);
  const configFile = o.password !== undefined ? redisConfigFile(o) : undefined;
  if (configFile) writeRedisConfig(configFile, o.password!);
  const shown = redactRedisUrl(url);
  const server = await startServerProcess({
    name: 'redis-server',
    command: o.binary ?? 'redis-server',
    args: redisServerArgs({ ...o, configFile }),
    debianPackage: 'redis-server',
    stdio: o.detached ? 'ignore' : 'pipe',
    detached: o.detached,
    logLimit: 20_000,
    ready: async () => (await probeRedis(url, 500)) === 'ok',
    timeoutMs,
    intervalMs: 50,
    notReady: `redis-server did not start on ${shown}`,
    logTail: 500,
    stopGraceMs: 2_000,
  });
  return { ...server, url };
}
