import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { type ConfigFlags, shared, withConfigOptions, withJson } from '../src/cli/options.js';
import { configLoadOptions } from '../src/cli/tls.js';
import { loadConfig } from '../src/config/load.js';
import { configReport, configRows } from '../src/config/report.js';

type Flags = ConfigFlags & { json?: boolean };

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  const load = async (flags: Flags) => {
    const out = io.output(flags);
    try {
      const loaded = await loadConfig(configLoadOptions(ctx, flags));
      for (const w of loaded.warnings) out.warn(w);
      return { out, loaded };
    } catch (err) {
      for (const w of (err as { warnings?: string[] }).warnings ?? []) out.warn(w);
      throw err;
    }
  };

  withJson(
    withConfigOptions(
      cmd.command('check').description('validate the configuration; exit 2 with every problem listed'),
    ),
  )
    .addOption(shared('stage'))
    .action(async (flags: Flags) => {
      const { out, loaded } = await load(flags);
      const report = { valid: true, ...configReport(loaded) };
      out.result(
        report,
        (r, c) =>
          `${c.green('✓')} ${r.file ?? 'defaults (no env file)'} is valid${r.production_mode ? ' for production' : ' (development mode)'}`,
      );
    });

  withJson(
    withConfigOptions(cmd.command('show').description('print the effective configuration, secrets redacted')),
  )
    .addOption(shared('stage'))
    .action(async (flags: Flags) => {
      const { out, loaded } = await load(flags);
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
    });
}
