import path from 'node:path';
import { defineCommand } from '../../src/cli/define.js';
import { intFlag } from '../../src/cli/options.js';
import { DEFAULT_CONFIG_PATH } from '../../src/config/load.js';
import type { InitFileKind } from '../../src/ops/init.js';

interface Flags {
  agents: string;
  dir: string;
  envPath: string;
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

export default defineCommand<Flags>({
  path: 'init',
  examples: ['ifmesh init', 'ifmesh init --agents 5 --dir my-mesh --dry-run', 'ifmesh init --force --json'],
  flags: [
    'json',
    { flags: '--agents <n>', description: 'agents to create: agent-1 … agent-N', default: '3' },
    { flags: '--dir <dir>', description: 'project directory the paths below are relative to', default: '.' },
    // Not --env-file: Node takes that flag for itself even after the script's name (nodejs/node#54232)
    // and exits 9 before ifmesh runs.
    { flags: '--env-path <file>', description: 'the env file to write', default: DEFAULT_CONFIG_PATH },
    {
      flags: '--agents-dir <dir>',
      description: 'where the agent configs (<id>.json) go',
      default: 'config/agents',
    },
    {
      flags: '--keys-dir <dir>',
      description: "where the agents' Ed25519 identities (<id>.key, <id>.pub) go",
      default: 'config/keys',
    },
    {
      flags: '--force',
      description: 'overwrite files that exist (without it, nothing is written if any does)',
    },
    { flags: '--dry-run', description: 'print what would be written and write nothing' },
  ],
  async run({ flags, ctx, out }) {
    const { displayPath, init } = await import('../../src/ops/init.js');
    const report = await init(
      {
        dir: path.resolve(ctx.cwd, flags.dir),
        agents: intFlag(flags.agents, '--agents', 1, 100),
        configFile: flags.envPath,
        agentsDir: flags.agentsDir,
        keysDir: flags.keysDir,
        force: Boolean(flags.force),
        cwd: ctx.cwd,
        now: new Date(ctx.clock.now()),
      },
      Boolean(flags.dryRun),
    );
    out.result(report, (r, c) => {
      const replaced = new Set(r.replaced);
      const width = Math.max(...Object.values(KIND).map((k) => k.length));
      const env = displayPath(ctx.cwd, r.files.find((f) => f.kind === 'config')?.path ?? flags.envPath);
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
  },
});
