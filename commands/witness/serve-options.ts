import path from 'node:path';
import type { Context } from '../../src/cli/context.js';
import { type ConfigFlags, durationFlag, intFlag } from '../../src/cli/options.js';
import { loadConfig } from '../../src/config/load.js';
import { UsageError } from '../../src/errors.js';
import { isPostgresUrl, type serveWitness } from '../../src/ops/witness/serve.js';
import { resolveState } from '../../src/state/state-dir.js';
import type { Output } from '../../src/ui/output.js';

export type ServeFlags = ConfigFlags & {
  host: string;
  port: string;
  stateDir?: string;
  db?: string;
  key?: string;
  checkpointEvery: string;
  checkpointInterval: string;
  retentionDays: string;
  json?: boolean;
};

type ServeOptions = Parameters<typeof serveWitness>[0];

/**
 * The witness's options: the configuration (read as it is: the witness trusts no CA of its own),
 * the database (SQLite, or PostgreSQL without a password on the command line) and its key.
 */
export async function witnessServeOptions(
  flags: ServeFlags,
  ctx: Context,
  out: Output,
  claimSignal: () => void,
): Promise<ServeOptions> {
  const loaded = await loadConfig({ cwd: ctx.cwd, env: ctx.env, file: flags.config, flags: flags.set });
  for (const w of loaded.warnings) out.warn(w);
  const state = resolveState(ctx.cwd, ctx.env, flags.stateDir);
  if (flags.db !== undefined && /\/\/[^/@]*:[^/@]*@/.test(flags.db))
    throw new UsageError(
      '--db must not carry a password: a command line is visible to every user of the host',
      'set WITNESS_DB_URL=postgres://USER:PASSWORD@HOST:PORT/DB in the environment or the env file instead',
    );
  const db = flags.db ?? (loaded.config.witnessDbUrl || state.witnessDb);
  const postgres = isPostgresUrl(db);
  const dbPath = postgres ? db : path.resolve(ctx.cwd, db);
  // Instances sharing one PostgreSQL database must share the key too: default in the state dir.
  const keyDir = postgres ? state.root : path.dirname(dbPath);
  claimSignal();
  return {
    host: flags.host,
    port: intFlag(flags.port, '--port', 0, 65535),
    dbPath,
    keyPath: path.resolve(ctx.cwd, flags.key ?? path.join(keyDir, 'witness.key')),
    apiKey: loaded.config.witnessApiKey,
    adminKey: loaded.raw.IF_WITNESS_ADMIN_KEY || undefined,
    queryToken: loaded.raw.WITNESS_QUERY_TOKEN || undefined,
    minRetentionDays: intFlag(flags.retentionDays, '--retention-days', 1, 36_500),
    checkpointEvery: intFlag(flags.checkpointEvery, '--checkpoint-every', 1, 1_000_000),
    checkpointIntervalMs: durationFlag(flags.checkpointInterval, '--checkpoint-interval', {
      min: 100,
      max: 86_400_000,
    }),
    signal: ctx.signal,
    log: (level, msg, fields) =>
      ctx.stderr.write(
        `${JSON.stringify({ time: new Date().toISOString(), level, service: 'if-witness', msg, ...fields })}\n`,
      ),
  };
}
