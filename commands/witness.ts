import path from 'node:path';
import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import {
  type ConfigFlags,
  durationFlag,
  intFlag,
  shared,
  withConfigOptions,
  withJson,
} from '../src/cli/options.js';
import { loadCommandConfig } from '../src/cli/tls.js';
import {
  observeCheckpoint,
  WitnessInconsistentError,
  WitnessKeyChangedError,
} from '../src/clients/witness-checkpoint.js';
import { loadConfig } from '../src/config/load.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { loadFleet } from '../src/ops/fleet/fleet.js';
import { migrateWitness } from '../src/ops/witness/migrate.js';
import { buildQueryBody, type QueryFlags, runWitnessQuery } from '../src/ops/witness/query.js';
import { isPostgresUrl, localWitnessDb, serveWitness } from '../src/ops/witness/serve.js';
import { spoolStatus } from '../src/ops/witness/spool.js';
import { trustWitness } from '../src/ops/witness/trust.js';
import { verifyDb, verifyUrl } from '../src/ops/witness/verify.js';
import { resolveState, type StateDir } from '../src/state/state-dir.js';
import { createProgress } from '../src/ui/progress.js';
import { eventLine, renderMigrate, renderSpool, renderTrust, renderVerify } from '../src/ui/witness.js';

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(
    withConfigOptions(
      cmd
        .command('serve')
        .description(
          'run the IF.witness audit service (SQLite, or PostgreSQL with --db postgres://…) until SIGTERM',
        )
        .option('--host <addr>', 'address to listen on', '127.0.0.1')
        .option('--port <n>', 'port to listen on', '8080')
        .addOption(shared('state-dir'))
        .option(
          '--db <file|url>',
          'SQLite file, or postgres://USER@HOST:PORT/DB (default $WITNESS_DB_URL, else <state-dir>/witness.db)',
        )
        .option(
          '--key <file>',
          "the witness's Ed25519 checkpoint key; created if absent (default <db dir>/witness.key)",
        )
        .option(
          '--retention-days <n>',
          'the shortest retention a cleanup may apply: newer events are never deleted',
          '30',
        )
        .option('--checkpoint-every <n>', 'sign a checkpoint after this many events', '1000')
        .option('--checkpoint-interval <duration>', '… or this often when the log grew', '10s'),
    ),
  ).action(
    async (
      flags: ConfigFlags & {
        host: string;
        port: string;
        stateDir?: string;
        db?: string;
        key?: string;
        checkpointEvery: string;
        checkpointInterval: string;
        retentionDays: string;
        json?: boolean;
      },
    ) => {
      const loaded = await loadConfig({ cwd: ctx.cwd, env: ctx.env, file: flags.config, flags: flags.set });
      const out = io.output(flags);
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
      io.claimSignal();
      await serveWitness(
        {
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
        },
        (info) => {
          if (flags.json) ctx.stdout.write(`${JSON.stringify(info)}\n`);
          else
            ctx.stderr.write(`if-witness listening on ${info.url} (db ${info.db}, origin ${info.origin})\n`);
        },
      );
    },
  );

  // Every client keeps the newest checkpoint it has seen; an inconsistent log fails the command.
  const observe = async (url: string, out: ReturnType<CommandIo['output']>, state: StateDir) => {
    try {
      await observeCheckpoint({
        url,
        state,
        dispatcher: ctx.dispatcher,
      });
    } catch (err) {
      if (err instanceof WitnessInconsistentError || err instanceof WitnessKeyChangedError) {
        out.warn(err instanceof WitnessKeyChangedError ? `${err.message}; ${err.hint}` : err.message);
        io.setExitCode(ExitCode.checkFailed);
      }
    }
  };
  const endpoint = async (flags: ConfigFlags & { witness?: string }) => {
    const loaded = await loadCommandConfig(ctx, flags);
    const state = resolveState(ctx.cwd, ctx.env, (flags as { stateDir?: string }).stateDir);
    const w = loadFleet(state, loaded, { witness: flags.witness }).witness;
    return { url: w.url, apiKey: w.api_key };
  };
  const queryOptions = (c: Command) =>
    withJson(withConfigOptions(c))
      .addOption(shared('witness'))
      .option('--event <name>', 'event name')
      .option('--agent <id>', 'agent_id')
      .option('--peer <id>', 'peer_id')
      .option('--trace <id>', 'trace_id')
      .option('--deployment <id>', 'deployment_id')
      .option('--incident <id>', 'incident_id')
      .option('--failover <id>', 'failover_id')
      .option('--since <duration>', 'from this long ago (30s, 5m, 1h, 7d) or an ISO time')
      .option('--until <duration>', 'to this long ago, or an ISO time (default now)')
      .option(
        '--where <KEY=VALUE>',
        'equality on a field or dotted path; repeatable',
        (v: string, p: string[] = []) => [...p, v],
      )
      .option(
        '--regex <KEY=PATTERN>',
        'RE2 regular expression on a field; repeatable',
        (v: string, p: string[] = []) => [...p, v],
      )
      .option('--limit <n>', 'at most this many results (1-10000)')
      .addOption(shared('state-dir'));

  queryOptions(
    cmd
      .command('query')
      .description('query the audit log (CONTRACT §3) with JSON or shorthand flags')
      .argument('[json]', 'a full /api/query body'),
  ).action(
    async (
      json: string | undefined,
      flags: QueryFlags & ConfigFlags & { witness?: string; json?: boolean },
    ) => {
      const { url } = await endpoint(flags);
      const answer = await runWitnessQuery({
        url,
        body: buildQueryBody(json, flags),
        token: ctx.env.WITNESS_QUERY_TOKEN,
        dispatcher: ctx.dispatcher,
      });
      await observe(
        url,
        io.output(flags),
        resolveState(ctx.cwd, ctx.env, (flags as { stateDir?: string }).stateDir),
      );
      io.output(flags).result(answer, (a, c) =>
        [
          ...a.results.map((e) => eventLine(e, c)),
          c.dim(`${a.count} event(s)${a.next_cursor ? ', more with --limit or the cursor' : ''}`),
        ].join('\n'),
      );
    },
  );

  queryOptions(
    cmd.command('tail').description('print the newest events; with --follow, keep printing new ones'),
  )
    .option('-n, --lines <n>', 'how many recent events to print first', '20')
    .option('-f, --follow', 'keep polling for new events until interrupted')
    .option('--interval <duration>', 'poll interval with --follow', '1s')
    .action(
      async (
        flags: QueryFlags &
          ConfigFlags & {
            witness?: string;
            json?: boolean;
            lines: string;
            follow?: boolean;
            interval: string;
          },
      ) => {
        const n = intFlag(flags.lines, '--lines', 0, 10_000);
        const interval = durationFlag(flags.interval, '--interval', { min: 100 });
        const { url } = await endpoint(flags);
        const out = io.output(flags);
        const print = (e: Record<string, unknown>) =>
          ctx.stdout.write(`${flags.json ? JSON.stringify(e) : eventLine(e, out.c)}\n`);
        const base = buildQueryBody(undefined, { ...flags, since: flags.since ?? '1h', limit: '10000' });
        const first = await runWitnessQuery({
          url,
          body: base,
          token: ctx.env.WITNESS_QUERY_TOKEN,
          dispatcher: ctx.dispatcher,
        });
        await observe(url, out, resolveState(ctx.cwd, ctx.env, (flags as { stateDir?: string }).stateDir));
        const seen = new Set<unknown>();
        let newest = 0;
        for (const e of first.results.slice(-n)) print(e);
        for (const e of first.results) {
          seen.add(e.id);
          newest = Math.max(newest, Date.parse(String(e.timestamp)) || 0);
        }
        if (!flags.follow) return;
        io.claimSignal();
        // Late events may carry older timestamps: look back 10 s and skip ids already printed.
        while (!ctx.signal.aborted) {
          await ctx.clock.sleep(interval, ctx.signal).catch(() => {});
          if (ctx.signal.aborted) break;
          const from = new Date(Math.max(0, newest - 10_000)).toISOString();
          const page = await runWitnessQuery({
            url,
            body: { ...base, time_range: { from, to: 'now' } },
            token: ctx.env.WITNESS_QUERY_TOKEN,
            dispatcher: ctx.dispatcher,
          }).catch((err) => {
            out.warn((err as Error).message);
            return undefined;
          });
          for (const e of page?.results ?? []) {
            if (seen.has(e.id)) continue;
            seen.add(e.id);
            if (seen.size > 100_000) seen.clear();
            newest = Math.max(newest, Date.parse(String(e.timestamp)) || 0);
            print(e);
          }
        }
      },
    );

  withJson(
    cmd
      .command('verify')
      .description('prove the log intact, or name the first event that is not (exit 1)')
      .option('--db <file|url>', 'check this SQLite file or postgres:// database directly')
      .option('--url <url>', 'check a running witness')
      .option(
        '--pubkey <key>',
        "the witness's public key (default: witness.pub/.key beside --db, else the held key of its origin)",
      )
      .addOption(shared('state-dir')),
  ).action(
    async (flags: { db?: string; url?: string; pubkey?: string; stateDir?: string; json?: boolean }) => {
      if (flags.db && flags.url) throw new UsageError('pass one of --db FILE or --url URL, not both');
      const state = resolveState(ctx.cwd, ctx.env, flags.stateDir);
      // With neither, the local stack's database (SQLite, or its PostgreSQL) in the state dir.
      if (!flags.db && !flags.url) {
        const local = localWitnessDb(state);
        if (!local)
          throw new UsageError(`no --db or --url, and no ${state.witnessDb}`, 'pass --db FILE or --url URL');
        flags.db = local;
      }
      const report = flags.db
        ? await verifyDb({
            dbPath: isPostgresUrl(flags.db) ? flags.db : path.resolve(ctx.cwd, flags.db),
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
      io.output(flags).result(report, renderVerify);
      if (!report.ok) io.setExitCode(ExitCode.checkFailed);
    },
  );

  withJson(
    cmd
      .command('migrate')
      .description('copy a SQLite log with its checkpoints into PostgreSQL; resumable, same tree head')
      .requiredOption('--from <sqlite:PATH>', 'the SQLite witness database')
      .requiredOption('--to <url>', 'postgres://USER@HOST:PORT/DB (the database must exist)')
      .option('--batch <n>', 'events per transaction', '10000')
      .option('--dry-run', 'say what would be copied, and copy nothing'),
  ).action(async (flags: { from: string; to: string; batch: string; dryRun?: boolean; json?: boolean }) => {
    const progress = await createProgress(ctx, Boolean(flags.json));
    io.claimSignal();
    const from = flags.from.startsWith('sqlite:')
      ? `sqlite:${path.resolve(ctx.cwd, flags.from.slice('sqlite:'.length))}`
      : flags.from;
    const report = await migrateWitness({
      from,
      to: flags.to,
      batch: intFlag(flags.batch, '--batch', 1, 100_000),
      dryRun: Boolean(flags.dryRun),
      signal: ctx.signal,
      onProgress: (done, total) =>
        progress.step(
          'migrate',
          'running',
          `${done.toLocaleString('en-US')} / ${total.toLocaleString('en-US')} events`,
        ),
    })
      .then((r) => {
        const detail = `${r.tree_size.toLocaleString('en-US')} events, ${r.events_per_second.toLocaleString('en-US')}/s`;
        if (!r.dry_run) progress.step('migrate', r.ok ? 'ok' : 'fail', detail);
        return r;
      })
      .finally(() => progress.close());
    io.output(flags).result(report, renderMigrate);
    if (!report.ok) io.setExitCode(ExitCode.checkFailed);
  });

  withJson(
    withConfigOptions(
      cmd
        .command('spool')
        .description('show events waiting for an unreachable witness; --flush replays them')
        .option('--flush', 'send what is waiting now')
        .addOption(shared('witness'))
        .addOption(shared('state-dir')),
    ),
  ).action(
    async (flags: ConfigFlags & { flush?: boolean; witness?: string; stateDir?: string; json?: boolean }) => {
      const state = resolveState(ctx.cwd, ctx.env, flags.stateDir);
      const { url, apiKey } = flags.flush ? await endpoint(flags) : { url: undefined, apiKey: undefined };
      const report = await spoolStatus({
        dir: state.spool,
        flush: Boolean(flags.flush),
        url,
        apiKey,
        state,
        dispatcher: ctx.dispatcher,
      });
      io.output(flags).result(report, renderSpool);
      if (report.key_changed) {
        const err = new WitnessKeyChangedError(report.key_changed);
        io.output(flags).warn(`${err.message}; ${err.hint}`);
        io.setExitCode(ExitCode.checkFailed);
      } else if (flags.flush && report.pending_events > 0) io.setExitCode(ExitCode.unreachable);
    },
  );

  withJson(
    cmd
      .command('trust')
      .description("show a witness's presented key beside the held one; --yes accepts it (known_hosts)")
      .argument('<url>', 'IF.witness base URL')
      .option('--yes', 'accept the presented key for this URL')
      .addOption(shared('state-dir')),
  ).action(async (url: string, flags: { yes?: boolean; stateDir?: string; json?: boolean }) => {
    const report = await trustWitness({
      url,
      state: resolveState(ctx.cwd, ctx.env, flags.stateDir),
      accept: Boolean(flags.yes),
      dispatcher: ctx.dispatcher,
    });
    io.output(flags).result(report, renderTrust);
    if (report.changed && !report.accepted) io.setExitCode(ExitCode.checkFailed);
  });
}
