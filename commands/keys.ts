import path from 'node:path';
import type { Command } from 'commander';
import { withJson } from '../src/cli/options.js';
import type { CommandIo } from '../src/cli/registry.js';
import { generateKeys, type KeyReport, showKey } from '../src/ops/keys.js';
import type { Output } from '../src/ui/output.js';

function render(out: Output, report: KeyReport, verb: string): void {
  for (const w of report.warnings) out.warn(w);
  out.result(report, (r, c) =>
    [
      verb ? `${c.green('✓')} ${verb} ${r.files.join(', ')}` : '',
      `agent_id    ${r.agent_id ?? c.dim('(not recorded)')}`,
      `key_id      ${r.key_id}`,
      `public_key  ${r.public_key}`,
    ]
      .filter(Boolean)
      .join('\n'),
  );
}

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(
    cmd
      .command('generate')
      .description('write a new Ed25519 identity: <out>/<agent>.key (mode 0600) and <out>/<agent>.pub')
      .requiredOption('--agent <id>', 'agent id, e.g. agent-1')
      .option('--out <dir>', 'directory to write to', 'keys')
      .option('--force', 'replace an existing identity'),
  ).action(async (flags: { agent: string; out: string; force?: boolean; json?: boolean }) => {
    const report = await generateKeys({
      agentId: flags.agent,
      outDir: path.resolve(ctx.cwd, flags.out),
      force: Boolean(flags.force),
      now: new Date(ctx.clock.now()),
    });
    render(io.output(flags), report, 'wrote');
  });

  withJson(
    cmd
      .command('show')
      .description('print the public key and key id of a .key or .pub file')
      .argument('<file>'),
  ).action(async (file: string, flags: { json?: boolean }) => {
    render(io.output(flags), await showKey(path.resolve(ctx.cwd, file)), '');
  });
}
