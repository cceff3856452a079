import path from 'node:path';
import type { Command } from 'commander';
import { type ConfigFlags, withConfigOptions, withJson } from '../src/cli/options.js';
import type { CommandIo } from '../src/cli/registry.js';
import { loadConfig } from '../src/config/load.js';
import { resolveStateDir } from '../src/config/state.js';
import { UsageError } from '../src/errors.js';
import { serveWitness } from '../src/ops/witness/serve.js';

function int(value: string, name: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`${name} must be a whole number from ${min} to ${max}, got "${value}"`);
  return n;
}

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(
    withConfigOptions(
      cmd
        .command('serve')
        .description('run the IF.witness audit service (SQLite, WAL) until SIGTERM')
        .option('--host <addr>', 'address to listen on', '127.0.0.1')
        .option('--port <n>', 'port to listen on', '8080')
        .option('--state-dir <dir>', 'ifmesh state directory (default .ifmesh or $IFMESH_STATE_DIR)')
        .option('--db <file>', 'SQLite file (default <state-dir>/witness.db)')
        .option(
          '--key <file>',
          "the witness's Ed25519 checkpoint key; created if absent (default <db dir>/witness.key)",
        )
        .option('--checkpoint-every <n>', 'sign a checkpoint after this many events', '1000')
        .option('--checkpoint-interval <ms>', '… or this often when the log grew', '10000'),
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
        json?: boolean;
      },
    ) => {
      const loaded = await loadConfig({ cwd: ctx.cwd, env: ctx.env, file: flags.config, flags: flags.set });
      const out = io.output(flags);
      for (const w of loaded.warnings) out.warn(w);
      const stateDir = resolveStateDir(ctx.cwd, ctx.env, flags.stateDir);
      const dbPath = path.resolve(ctx.cwd, flags.db ?? path.join(stateDir, 'witness.db'));
      io.claimSignal();
      await serveWitness(
        {
          host: flags.host,
          port: int(flags.port, '--port', 0, 65535),
          dbPath,
          keyPath: path.resolve(ctx.cwd, flags.key ?? path.join(path.dirname(dbPath), 'witness.key')),
          apiKey: loaded.config.witnessApiKey,
          queryToken: ctx.env.WITNESS_QUERY_TOKEN || undefined,
          checkpointEvery: int(flags.checkpointEvery, '--checkpoint-every', 1, 1_000_000),
          checkpointIntervalMs: int(flags.checkpointInterval, '--checkpoint-interval', 100, 86_400_000),
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
}
