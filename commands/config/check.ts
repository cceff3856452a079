import { defineCommand } from '../../src/cli/define.js';
import type { ConfigFlags } from '../../src/cli/options.js';
import { loadShown } from './load.js';

export default defineCommand<ConfigFlags & { json?: boolean }>({
  path: 'config check',
  summary: 'validate the configuration; exit 2 with every problem listed',
  examples: ['ifmesh config check --config config/webrtc-production.env'],
  flags: ['config', 'set', 'json', 'stage'],
  async run({ flags, ctx, out }) {
    const loaded = await loadShown(ctx, flags, out);
    const { configReport } = await import('../../src/config/report.js');
    out.result(
      { valid: true, ...configReport(loaded) },
      (r, c) =>
        `${c.green('✓')} ${r.file ?? 'defaults (no env file)'} is valid${r.production_mode ? ' for production' : ' (development mode)'}`,
    );
  },
});
