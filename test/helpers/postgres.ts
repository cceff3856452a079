// A real PostgreSQL for tests: a fresh initdb in a temp directory, on a free loopback port, owned by
// the `postgres` system user when the tests run as root. Stopped by pid and removed by stop().
import { chmodSync, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { type Cluster, postgresBinDir, startCluster } from '../../src/exec/postgres.js';
import { freePort } from '../../src/ops/stack/stack.js';
import { tempDir } from './cli.js';
import { trackPid } from './pids.js';

export interface TestPostgres {
  cluster: Cluster;
  dir: string;
  /** Creates a fresh database and returns its postgres:// URL. */
  createDatabase(name?: string): Promise<string>;
  /** Stops the server (fast shutdown: open sessions are cut) and starts it again on the same data and port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

let counter = 0;

/**
 * The cluster's owner (postgres, when the tests run as root) must pass through every directory above
 * its data: adds search (x) permission for group and others to `dir` and each parent lacking it —
 * the run's private temp root included, whose contents stay unlistable.
 */
export function letPostgresReach(dir: string): void {
  for (let d = path.resolve(dir); d !== path.dirname(d); d = path.dirname(d)) {
    const mode = statSync(d).mode & 0o7777;
    if ((mode & 0o011) !== 0o011) chmodSync(d, mode | 0o011);
  }
}

export function requirePostgres(): string {
  const dir = postgresBinDir();
  if (!dir || !existsSync(path.join(dir, 'postgres')))
    throw new Error(
      'PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin): apt-get install postgresql (or run bash test/setup/system-packages.sh as root)',
    );
  return dir;
}

export async function startPostgres(): Promise<TestPostgres> {
  requirePostgres();
  const { dir, cleanup } = tempDir();
  letPostgresReach(dir);
  let cluster: Cluster;
  const opts = {
    dataDir: path.join(dir, 'data'),
    socketDir: path.join(dir, 'sock'),
    logFile: path.join(dir, 'log', 'postgres.log'),
    port: await freePort(),
    noSync: true,
  };
  try {
    cluster = await startCluster(opts);
  } catch (err) {
    cleanup();
    throw err;
  }
  trackPid(cluster.pid);
  return {
    get cluster() {
      return cluster;
    },
    dir,
    async restart() {
      await cluster.stop();
      cluster = await startCluster(opts);
      trackPid(cluster.pid);
    },
    async createDatabase(name = `w${process.pid}_${counter++}`) {
      const admin = new pg.Client({
        connectionString: cluster.url('postgres'),
        connectionTimeoutMillis: 10_000,
      });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE "${name}"`);
      } finally {
        await admin.end();
      }
      return cluster.url(name);
    },
    async stop() {
      try {
        await cluster.stop();
      } finally {
        cleanup();
      }
    },
  };
}

/** One PostgreSQL for the calling test file: started before its tests, stopped after them. */
export function postgresForThisFile(): () => TestPostgres {
  let server: TestPostgres | undefined;
  beforeAll(async () => {
    server = await startPostgres();
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error('PostgreSQL did not start (see the beforeAll error)');
    return server;
  };
}
