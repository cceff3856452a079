import path from 'node:path';
import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { intFlag, withJson } from '../src/cli/options.js';
import { DEFAULT_CONFIG_PATH } from '../src/config/load.js';
import { displayPath, type InitFileKind, init } from '../src/ops/init.js';

interface Flags {
  agents: string;
  dir: string;
  envFile: string;
  agentsDir: string;
  keysDir: string;
  force?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

const KIND: Record<InitFileKind, string> = {
  config: 'env file',
  'agent-config': 'agent config',
  key: 'private key',
  'public-key': 'public key',
};

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(cmd)
    .option('--agents <n>', 'agents to create: agent-1 … agent-N', '3')
    .option('--dir <dir>', 'project directory the paths below are relative to', '.')
    .option('--env-file <file>', 'the env file to write', DEFAULT_CONFIG_PATH)
    .option('--agents-dir <dir>', 'where the agent configs (<id>.json) go', 'config/agents')
    .option('--keys-dir <dir>', "where the agents' Ed25519 identities (<id>.key, <id>.pub) go", 'config/keys')
    .option('--force', 'overwrite files that exist (without it, nothing is written if any does)')
    .option('--dry-run', 'print what would be written and write nothing')
    .action(async (flags: Flags) => {
      const report = await init(
        {
          dir: path.resolve(ctx.cwd, flags.dir),
          agents: intFlag(flags.agents, '--agents', 1, 100),
          configFile: flags.envFile,
          agentsDir: flags.agentsDir,
          keysDir: flags.keysDir,
          force: Boolean(flags.force),
          cwd: ctx.cwd,
          now: new Date(ctx.clock.now()),
        },
        Boolean(flags.dryRun),
      );
      io.output(flags).result(report, (r, c) => {
        const replaced = new Set(r.replaced);
        const width = Math.max(...Object.values(KIND).map((k) => k.length));
        const env = displayPath(ctx.cwd, r.files.find((f) => f.kind === 'config')?.path ?? flags.envFile);
        return [
          r.dry_run ? c.bold('would write (dry run: nothing written)') : `${c.green('✓')} wrote`,
          ...r.files.map(
            (f) =>
              `  ${KIND[f.kind].padEnd(width)}  ${f.mode}  ${displayPath(ctx.cwd, f.path)}${replaced.has(f.path) ? c.yellow(' (replaced)') : ''}`,
          ),
          '',
          c.dim(`For production, fill in TURN_SERVERS and the TLS files in ${env}; then:`),
          ...r.next.map((n) => `  ${n}`),
        ].join('\n');
      });
    });
}
