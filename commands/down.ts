import type { Command } from 'commander';
import { withJson } from '../src/cli/options.js';
import type { CommandIo } from '../src/cli/registry.js';
import { resolveStateDir } from '../src/config/state.js';
import { down } from '../src/ops/stack/up.js';

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(cmd)
    .option('--state-dir <dir>', 'the stack to stop (default .ifmesh or $IFMESH_STATE_DIR)')
    .action(async (flags: { stateDir?: string; json?: boolean }) => {
      const report = await down(resolveStateDir(ctx.cwd, ctx.env, flags.stateDir));
      io.output(flags).result(report, (r, c) =>
        r.stopped.length === 0 && r.not_running.length === 0
          ? `no stack in ${r.state_dir}`
          : `${c.green('✓')} stopped ${r.stopped.join(', ') || 'nothing'} in ${(r.elapsed_ms / 1000).toFixed(1)} s${r.not_running.length ? c.dim(` (not running: ${r.not_running.join(', ')})`) : ''}`,
      );
    });
}
