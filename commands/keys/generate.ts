import path from 'node:path';
import { defineCommand } from '../../src/cli/define.js';
import { renderKey } from './render.js';

export default defineCommand<{ agent: string; out: string; force?: boolean; json?: boolean }>({
  path: 'keys generate',
  summary: 'write a new Ed25519 identity: <out>/<agent>.key (mode 0600) and <out>/<agent>.pub',
  examples: ['ifmesh keys generate --agent agent-1 --out keys'],
  flags: [
    { flags: '--agent <id>', description: 'agent id, e.g. agent-1', required: true },
    { flags: '--out <dir>', description: 'directory to write to', default: 'keys' },
    { flags: '--force', description: 'replace an existing identity' },
    'json',
  ],
  async run({ flags, ctx, out }) {
    const { generateKeys } = await import('../../src/ops/keys.js');
    const report = await generateKeys({
      agentId: flags.agent,
      outDir: path.resolve(ctx.cwd, flags.out),
      force: Boolean(flags.force),
      now: new Date(ctx.clock.now()),
    });
    renderKey(out, report, 'wrote');
  },
});
