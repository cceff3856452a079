import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { shared, withJson } from '../src/cli/options.js';
import { ExitCode } from '../src/errors.js';
import { down } from '../src/ops/stack/down.js';
import { resolveState } from '../src/state/state-dir.js';
import { formatDuration } from '../src/ui/units.js';

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(cmd)
    .addOption(shared('stage'))
    .addOption(shared('state-dir'))
    .action(async (flags: { stateDir?: string; stage?: string; json?: boolean }) => {
      const report = await down({ state: resolveState(ctx.cwd, ctx.env, flags.stateDir, flags.stage) }, ctx);
      io.output(flags).result(report, (r, c) =>
        r.stopped.length + r.not_running.length + r.failed.length === 0
          ? `no processes recorded in ${r.state_dir}`
          : [
              `${r.failed.length ? c.red('✗') : c.green('✓')} stopped ${r.stopped.join(', ') || 'nothing'} in ${formatDuration(r.elapsed_ms)}${r.not_running.length ? c.dim(` (not running: ${r.not_running.join(', ')})`) : ''}`,
              ...(r.failed.length ? [c.red(`  still running after SIGKILL: ${r.failed.join(', ')}`)] : []),
            ].join('\n'),
      );
      if (report.failed.length) io.setExitCode(ExitCode.checkFailed);
    });
}
