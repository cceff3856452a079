import path from 'node:path';
import { defineCommand, failedIf } from '../../src/cli/define.js';
import { intFlag } from '../../src/cli/options.js';
import { createProgress } from '../../src/ui/progress.js';

type Flags = { from: string; to: string; batch: string; dryRun?: boolean; json?: boolean };

const count = (n: number) => n.toLocaleString('en-US');

export default defineCommand<Flags>({
  path: 'witness migrate',
  summary: 'copy a SQLite log with its checkpoints into PostgreSQL; resumable, same tree head',
  examples: [
    'ifmesh witness migrate --from sqlite:.ifmesh/witness.db --to postgres://ifmesh@127.0.0.1:5432/witness',
  ],
  flags: [
    { flags: '--from <sqlite:PATH>', description: 'the SQLite witness database', required: true },
    {
      flags: '--to <url>',
      description: 'postgres://USER@HOST:PORT/DB (the database must exist)',
      required: true,
    },
    { flags: '--batch <n>', description: 'events per transaction', default: '10000' },
    { flags: '--dry-run', description: 'say what would be copied, and copy nothing' },
    'json',
  ],
  async run({ flags, ctx, io, out }) {
    const [{ migrateWitness }, { renderMigrate }] = await Promise.all([
      import('../../src/ops/witness/migrate.js'),
      import('../../src/ui/witness.js'),
    ]);
    const progress = await createProgress(ctx, Boolean(flags.json));
    io.claimSignal();
    const from = flags.from.startsWith('sqlite:')
      ? `sqlite:${path.resolve(ctx.cwd, flags.from.slice('sqlite:'.length))}`
      : flags.from;
    const report = await Promise.resolve()
      .then(() =>
        migrateWitness({
          from,
          to: flags.to,
          batch: intFlag(flags.batch, '--batch', 1, 100_000),
          dryRun: Boolean(flags.dryRun),
          signal: ctx.signal,
          onProgress: (done, total) =>
            progress.step('migrate', 'running', `${count(done)} / ${count(total)} events`),
        }),
      )
      .then((r) => {
        const detail = `${count(r.tree_size)} events, ${count(r.events_per_second)}/s`;
        if (!r.dry_run) progress.step('migrate', r.ok ? 'ok' : 'fail', detail);
        return r;
      })
      .finally(() => progress.close());
    out.result(report, renderMigrate);
    return failedIf(!report.ok);
  },
});
