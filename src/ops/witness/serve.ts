import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { createSigner, toBase64url } from '../../crypto/ed25519.js';
import { loadOrCreateIdentity } from '../../crypto/key-file.js';
import { listenFailure, UnreachableError, UsageError } from '../../errors.js';
import { clusterUrl } from '../../exec/postgres.js';
import { isPostgresUrl, openPgStore, redactDbUrl } from '../../services/witness/pg-store.js';
import { createWitnessServer } from '../../services/witness/server.js';
import { openSqliteStore } from '../../services/witness/sqlite-store.js';
import type { WitnessStore } from '../../services/witness/store.js';
import { listProcesses } from '../../state/processes.js';
import { secretEnv } from '../../state/secrets.js';
import type { StateDir } from '../../state/state-dir.js';
import { untilAborted } from '../shared.js';
import { POSTGRES_PASSWORD_KEY } from '../stack/service-secrets.js';

export { isPostgresUrl } from '../../services/witness/pg-store.js';

export interface ServeWitnessOptions {
  host: string;
  port: number;
  /** A SQLite file, or a postgres:// URL (several witnesses may share one PostgreSQL database). */
  dbPath: string;
  keyPath: string;
  /** The write key (IF_WITNESS_API_KEY). */
  apiKey: string;
  /** The admin key (IF_WITNESS_ADMIN_KEY); without it the write key also runs cleanup. */
  adminKey?: string | undefined;
  /** The read token (WITNESS_QUERY_TOKEN); without it /api/query is open. */
  queryToken: string | undefined;
  /** The shortest retention a cleanup may apply, in days. */
  minRetentionDays?: number | undefined;
  checkpointEvery: number;
  checkpointIntervalMs: number;
  signal: AbortSignal;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export interface WitnessReady {
  url: string;
  origin: string;
  public_key: string;
  db: string;
  pid: number;
}

/** Runs the witness until `signal` aborts, then stops accepting, signs a last checkpoint and closes. */
export async function serveWitness(
  opts: ServeWitnessOptions,
  onReady: (info: WitnessReady) => void,
): Promise<void> {
  if (!opts.apiKey) {
    throw new UsageError(
      'IF_WITNESS_API_KEY is not set; writes need a bearer key',
      'export IF_WITNESS_API_KEY=… or set it in the env file',
    );
  }
  if (opts.adminKey && opts.adminKey === opts.apiKey)
    throw new UsageError(
      'IF_WITNESS_ADMIN_KEY is the same as IF_WITNESS_API_KEY: every writer could delete events',
      'give the admin key its own random value (openssl rand -base64 32)',
    );
  if (!opts.adminKey)
    opts.log('warn', 'IF_WITNESS_ADMIN_KEY is not set: the write key can also run cleanup', {
      hint: 'set IF_WITNESS_ADMIN_KEY so that agents, which hold the write key, cannot delete events',
    });
  const postgres = isPostgresUrl(opts.dbPath);
  if (!postgres) mkdirSync(path.dirname(opts.dbPath), { recursive: true });
  const identity = await loadOrCreateIdentity(opts.keyPath, 'witness');
  let store: WitnessStore;
  if (postgres) {
    try {
      store = await openPgStore(opts.dbPath);
    } catch (err) {
      throw new UnreachableError(
        `cannot open ${redactDbUrl(opts.dbPath)}: ${(err as Error).message}`,
        'check that PostgreSQL runs there and the database exists (createdb NAME)',
      );
    }
  } else {
    try {
      store = openSqliteStore(opts.dbPath);
    } catch (err) {
      throw new UsageError(
        `cannot open ${opts.dbPath}: ${(err as Error).message}`,
        'check the path and that no other process holds it',
      );
    }
  }
  const server = createWitnessServer({
    store,
    signer: createSigner(identity.seed),
    apiKey: opts.apiKey,
    adminKey: opts.adminKey,
    queryToken: opts.queryToken,
    minRetentionDays: opts.minRetentionDays,
    checkpointEvery: opts.checkpointEvery,
    checkpointIntervalMs: opts.checkpointIntervalMs,
    log: opts.log,
  });
  try {
    await server.listen(opts.port, opts.host);
  } catch (err) {
    await store.close();
    throw listenFailure(err, opts.host, opts.port);
  }
  onReady({
    url: server.url,
    origin: server.origin,
    public_key: toBase64url(identity.publicKey),
    db: postgres ? redactDbUrl(opts.dbPath) : opts.dbPath,
    pid: process.pid,
  });
  await untilAborted(opts.signal);
  opts.log('info', 'shutting down');
  await server.close();
}

/** The local stack's witness database: its PostgreSQL (`up --witness-db postgres`), else witness.db. */
export function localWitnessDb(state: StateDir): string | undefined {
  const pg = listProcesses(state).find((r) => r.role === 'postgres' && r.port);
  // The password `up` generated for it (in the secrets file); a cluster made before has none (trust).
  if (pg?.port)
    return clusterUrl(
      pg.port,
      'witness',
      undefined,
      secretEnv(state, [POSTGRES_PASSWORD_KEY])[POSTGRES_PASSWORD_KEY],
    );
  const file = state.witnessDb;
  return existsSync(file) ? file : undefined;
}
