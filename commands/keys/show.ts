import path from 'node:path';
import { defineCommand } from '../../src/cli/define.js';
import { renderKey } from './render.js';

export default defineCommand<{ json?: boolean }, [string]>({
  path: 'keys show',
  summary: 'print the public key and key id of a .key or .pub file',
  examples: ['ifmesh keys show keys/agent-1.key'],
  args: [{ name: '<file>' }],
  flags: ['json'],
  async run({ args: [file], ctx, out }) {
    const { showKey } = await import('../../src/ops/keys.js');
    renderKey(out, await showKey(path.resolve(ctx.cwd, file)), '');
  },
});
