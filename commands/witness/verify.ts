import path from 'node:path';
import { defineCommand, failedIf } from '../../src/cli/define.js';
import { UsageError } from '../../src/errors.js';

type Flags = { db?: string; url?: string; pubkey?: string; stateDir?: string; json?: boolean };

export default defineCommand<Flags, [], 'state'>({
  path: 'witness verify',
  summary: 'prove the log intact, or name the first event that is not (exit 1)',
  examples: ['ifmesh witness verify --db .ifmesh/witness.db'],
  flags: [
    { flags: '--db <file|url>', description: 'check this SQLite file or postgres:// database directly' },
    { flags: '--url <url>', description: 'check a running witness' },
    {
      flags: '--pubkey <key>',
      description:
        "the witness's public key (default: witness.pub/.key beside --db, else the held key of its origin)",
    },
    'state-dir',
    'json',
  ],
  needs: ['state'],
  newState: true,
  async run({ flags, needs: { state }, ctx, out }) {
    if (flags.db && flags.url) throw new UsageError('pass one of --db FILE or --url URL, not both');
    const [{ isPostgresUrl, localWitnessDb }, { verifyDb, verifyUrl }, { renderVerify }] = await Promise.all([
      import('../../src/ops/witness/serve.js'),
      import('../../src/ops/witness/verify.js'),
      import('../../src/ui/witness.js'),
    ]);
    let db = flags.db;
    // With neither, the local stack's database (SQLite, or its PostgreSQL) in the state dir.
    if (!db && !flags.url) {
      db = localWitnessDb(state);
      if (!db)
        throw new UsageError(`no --db or --url, and no ${state.witnessDb}`, 'pass --db FILE or --url URL');
    }
    const report = db
      ? await verifyDb({
          dbPath: isPostgresUrl(db) ? db : path.resolve(ctx.cwd, db),
          state,
          publicKey: flags.pubkey,
          cwd: ctx.cwd,
        })
      : await verifyUrl({
          url: flags.url!,
          state,
          queryToken: ctx.env.WITNESS_QUERY_TOKEN,
          dispatcher: ctx.dispatcher,
        });
    out.result(report, renderVerify);
    return failedIf(!report.ok);
  },
});
