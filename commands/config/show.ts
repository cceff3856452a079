import { defineCommand } from '../../src/cli/define.js';
import type { ConfigFlags } from '../../src/cli/options.js';
import { loadShown } from './load.js';

export default defineCommand<ConfigFlags & { json?: boolean }>({
  path: 'config show',
  summary: 'print the effective configuration, secrets redacted',
  examples: ['ifmesh config show --json'],
  flags: ['config', 'set', 'json', 'stage'],
  async run({ flags, ctx, out }) {
    const loaded = await loadShown(ctx, flags, out);
    const { configReport, configRows } = await import('../../src/config/report.js');
    out.result(configReport(loaded), (_r, c) => {
      const rows = configRows(loaded);
      const width = Math.max(...rows.map((r) => r.key.length));
      const head = `${c.dim(`# ${loaded.file ?? 'no env file; defaults and environment'}`)}\n`;
      return (
        head +
        rows
          .map(
            (r) =>
              `${r.key.padEnd(width)}  ${r.value === null ? c.dim('(unset)') : r.value}  ${c.dim(r.source)}`,
          )
          .join('\n')
      );
    });
  },
});
