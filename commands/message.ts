import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { durationFlag, shared, withJson } from '../src/cli/options.js';
import { readStdin } from '../src/cli/stdin.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { signOne, verifyOne } from '../src/ops/message.js';

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  cmd
    .command('sign')
    .description('print a signed IFMessage (one line of JSON) from the identity in --key')
    .requiredOption('--key <file>', 'identity file written by `ifmesh keys generate`')
    .requiredOption('--to <agent>', 'recipient agent id')
    .requiredOption('--type <type>', 'message type, e.g. ping')
    .option('--payload <json>', 'payload object as JSON', undefined)
    .addOption(shared('json'))
    .action(async (flags: { key: string; to: string; type: string; payload?: string }) => {
      const message = await signOne({
        keyFile: path.resolve(ctx.cwd, flags.key),
        to: flags.to,
        type: flags.type,
        payload: flags.payload,
        nowMs: ctx.clock.now(),
      });
      ctx.stdout.write(`${JSON.stringify(message)}\n`);
    });

  withJson(
    cmd
      .command('verify')
      .description('verify an IFMessage read from stdin (or FILE); exit 1 with the reason when it fails')
      .argument('[file]', 'message file; default: stdin')
      .requiredOption('--pubkey <key>', "sender's public key: 43 base64url characters, or a .pub/.key file")
      .option('--from <agent>', 'require this sender id (the channel peer)')
      .option('--max-skew <duration>', 'accepted clock skew (a bare number is in seconds)', '30s'),
  ).action(
    async (
      file: string | undefined,
      flags: { pubkey: string; from?: string; maxSkew: string; json?: boolean },
    ) => {
      const skewMs = durationFlag(flags.maxSkew, '--max-skew', { bare: 's' });
      const text = file
        ? await readFileText(path.resolve(ctx.cwd, file))
        : await readStdin(ctx, 'ifmesh message verify --pubkey KEY < msg.json');
      const report = await verifyOne({
        pubkey: flags.pubkey,
        cwd: ctx.cwd,
        text,
        expectFrom: flags.from,
        skewMs,
        nowMs: ctx.clock.now(),
      });
      io.output(flags).result(report, (r, c) =>
        r.valid
          ? `${c.green('✓')} valid ${r.type} ${r.id} from ${r.from} to ${r.to} (key ${r.key_id})`
          : `${c.red('✗')} rejected: ${r.reason}: ${r.detail}`,
      );
      if (!report.valid) io.setExitCode(ExitCode.checkFailed);
    },
  );
}

async function readFileText(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`, 'check the path');
  }
}
