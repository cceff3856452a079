// A local PostgreSQL cluster (Debian's `postgresql`): initdb, start, stop. Debian puts the server
// binaries in /usr/lib/postgresql/<major>/bin, not on PATH. PostgreSQL refuses to run as root, so
// when ifmesh runs as root the cluster belongs to an unprivileged system user (`postgres`) and every
// server command goes through `runuser -u <user> --`.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { UnreachableError } from '../errors.js';
import { isAlive } from './pid.js';

const run = promisify(execFile);

/** The directory holding initdb, pg_ctl and postgres, or undefined when PostgreSQL is not installed. */
export function postgresBinDir(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':'))
    if (dir && existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'pg_ctl'))) return dir;
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const majors = readdirSync(base)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of majors) {
    const dir = path.join(base, v, 'bin');
    if (existsSync(path.join(dir, 'initdb'))) return dir;
  }
  return undefined;
}

export interface ClusterOptions {
  /** The data directory (created; must be empty or absent for initdb). */
  dataDir: string;
  port: number;
  /** Unix socket directory (`-k`); default the data directory. */
  socketDir?: string;
  logFile: string;
  /** System user that owns the cluster when ifmesh runs as root (default `postgres`). */
  systemUser?: string;
  /** initdb without its final fsync: for throw-away test clusters only. */
  noSync?: boolean;
  /**
   * The superuser's password: initdb then makes every connection (socket and TCP) authenticate with
   * scram-sha-256. Without it the cluster trusts loopback, which only throw-away test clusters do.
   */
  password?: string;
}

export interface Cluster {
  pid: number;
  port: number;
  /** The superuser every cluster made here has (its password is ClusterOptions.password, if any). */
  user: string;
  url(database: string): string;
  stop(): Promise<void>;
}

/** The superuser of a cluster made by startCluster (it is named after the cluster's owner). */
export function clusterSuperuser(systemUser?: string): string {
  return process.getuid?.() === 0 ? (systemUser ?? 'postgres') : userInfo().username;
}

/** The superuser's URL; with `password` in it when given (a secret: keep it off argv and out of output). */
export function clusterUrl(port: number, database: string, systemUser?: string, password?: string): string {
  const auth = password ? `:${encodeURIComponent(password)}` : '';
  return `postgres://${encodeURIComponent(clusterSuperuser(systemUser))}${auth}@127.0.0.1:${port}/${database}`;
}

/** Creates `name` in the cluster on 127.0.0.1:port when it does not exist yet. */
export async function ensureDatabase(
  port: number,
  name: string,
  systemUser?: string,
  password?: string,
): Promise<string> {
  const { default: pg } = await import('pg');
  const admin = new pg.Client({
    connectionString: clusterUrl(port, 'postgres', systemUser, password),
    connectionTimeoutMillis: 10_000,
  });
  admin.on('error', () => {});
  await admin.connect();
  try {
    const have = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (have.rowCount === 0) await admin.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
  } finally {
    await admin.end();
  }
  return clusterUrl(port, name, systemUser, password);
}

function asOwner(opts: ClusterOptions): { prefix: string[]; user: string; uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return { prefix: [], user: userInfo().username };
  const user = opts.systemUser ?? 'postgres';
  let ids: string[] = [];
  try {
    ids =
      readFileSync('/etc/passwd', 'utf8')
        .split('\n')
        .find((l) => l.startsWith(`${user}:`))
        ?.split(':')
        .slice(2, 4) ?? [];
  } catch {}
  if (ids.length < 2)
    throw new UnreachableError(
      `PostgreSQL refuses to run as root and there is no system user "${user}" to run it as`,
      'apt-get install postgresql (it creates the postgres user)',
    );
  return { prefix: ['runuser', '-u', user, '--'], user, uid: Number(ids[0]), gid: Number(ids[1]) };
}

async function pg(opts: ClusterOptions, bin: string, args: string[], timeoutMs: number): Promise<string> {
  const dir = postgresBinDir();
  if (!dir)
    throw new UnreachableError(
      'PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin)',
      'apt-get install postgresql',
    );
  const owner = asOwner(opts);
  const argv = [...owner.prefix, path.join(dir, bin), ...args];
  try {
    const { stdout } = await run(argv[0]!, argv.slice(1), { timeout: timeoutMs });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new UnreachableError(`${bin} failed: ${(e.stderr || e.message).trim().slice(-600)}`);
  }
}

/** The postmaster's pid from `postmaster.pid`, when a server is running on this data directory. */
export function clusterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * initdb (when the data directory holds no cluster yet), then `pg_ctl start -w` on 127.0.0.1:port,
 * loopback only. With a password, scram-sha-256 for every connection; without, trust (tests only).
 */
export async function startCluster(opts: ClusterOptions, timeoutMs = 60_000): Promise<Cluster> {
  const owner = asOwner(opts);
  const socketDir = opts.socketDir ?? opts.dataDir;
  for (const d of [opts.dataDir, socketDir]) {
    // Parents with the default mode (the owner must pass through them), the directory itself 0700.
    mkdirSync(path.dirname(d), { recursive: true });
    mkdirSync(d, { recursive: true, mode: 0o700 });
    if (owner.uid !== undefined) chownSync(d, owner.uid, owner.gid!);
  }
  if (owner.prefix.length) {
    try {
      await run(owner.prefix[0]!, [...owner.prefix.slice(1), 'test', '-w', opts.dataDir], {
        timeout: 10_000,
      });
    } catch {
      throw new UnreachableError(
        `PostgreSQL runs as ${owner.user}, who cannot reach ${opts.dataDir}`,
        `let ${owner.user} through its parent directories (chmod o+x …) or use a --state-dir it can reach`,
      );
    }
  }
  // Only the log file changes hands: its directory may be shared with other services' logs.
  mkdirSync(path.dirname(opts.logFile), { recursive: true });
  closeSync(openSync(opts.logFile, 'a'));
  if (owner.uid !== undefined) chownSync(opts.logFile, owner.uid, owner.gid!);
  if (!existsSync(path.join(opts.dataDir, 'PG_VERSION'))) await initdb(opts, owner, timeoutMs);
  await pg(
    opts,
    'pg_ctl',
    [
      'start',
      '-w',
      '-t',
      String(Math.ceil(timeoutMs / 1000)),
      '-D',
      opts.dataDir,
      '-l',
      opts.logFile,
      '-o',
      `-c listen_addresses=127.0.0.1 -p ${opts.port} -k ${socketDir}`,
    ],
    timeoutMs + 5_000,
  );
  const pid = clusterPid(opts.dataDir);
  if (!pid) throw new UnreachableError(`PostgreSQL did not start; see ${opts.logFile}`);
  return {
    pid,
    port: opts.port,
    user: owner.user,
    url: (db) => clusterUrl(opts.port, db, opts.systemUser, opts.password),
    stop: () => stopCluster(pid),
  };
}

/**
 * initdb as the cluster's owner. The password reaches it through --pwfile, a 0600 file (the owner's)
 * beside the data directory that is removed as soon as initdb returns: never on a command line, where
 * `ps` would show it, and never left on disk outside the state's secrets file.
 */
async function initdb(opts: ClusterOptions, owner: ReturnType<typeof asOwner>, timeoutMs: number) {
  const pwfile = opts.password
    ? path.join(path.dirname(opts.dataDir), `.initdb-pw-${randomBytes(6).toString('hex')}`)
    : undefined;
  try {
    if (pwfile) {
      writeFileSync(pwfile, `${opts.password}\n`, { mode: 0o600, flag: 'wx' });
      if (owner.uid !== undefined) chownSync(pwfile, owner.uid, owner.gid!);
    }
    await pg(
      opts,
      'initdb',
      [
        '-D',
        opts.dataDir,
        ...(pwfile ? ['--auth=scram-sha-256', `--pwfile=${pwfile}`] : ['-A', 'trust']),
        '-U',
        owner.user,
        '-E',
        'UTF8',
        '--locale=C',
        ...(opts.noSync ? ['--no-sync'] : []),
      ],
      timeoutMs,
    );
  } finally {
    if (pwfile) rmSync(pwfile, { force: true });
  }
}

/** Fast shutdown (SIGINT: running transactions roll back, then a clean checkpoint), by pid. */
export async function stopCluster(pid: number, timeoutMs = 30_000): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, 'SIGINT');
  const deadline = performance.now() + timeoutMs;
  while (isAlive(pid) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
}
