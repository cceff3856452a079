import type { Command } from 'commander';
import { shared, withJson } from '../src/cli/options.js';
import type { CommandIo } from '../src/cli/registry.js';
import { resolveStateDir } from '../src/config/state.js';
import { ExitCode } from '../src/errors.js';
import { status } from '../src/ops/stack/status.js';

const MODES = {
  redis: 'every instance active, one mesh shared through Redis',
  standby: 'one active instance, the others hot standbys (no Redis: apt-get install redis-server)',
  single: 'one instance',
} as const;

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(cmd)
    .addOption(shared('state-dir'))
    .action(async (flags: { stateDir?: string; json?: boolean }) => {
      const report = await status(resolveStateDir(ctx.cwd, ctx.env, flags.stateDir), ctx);
      io.output(flags).result(report, (r, c) => {
        if (!r.exists) return `no stack in ${r.state_dir}; start one with 'ifmesh up'`;
        return [
          ...r.components.map(
            (k) =>
              `${k.healthy ? c.green('✓') : c.red('✗')} ${k.name.padEnd(12)} ${k.running ? `pid ${k.pid}`.padEnd(11) : c.red('not running')} ${k.url ?? ''}${k.uptime_s !== null ? c.dim(` up ${k.uptime_s}s`) : ''}`,
          ),
          r.mesh
            ? `  mesh: ${r.mesh.agents} agents, ${r.mesh.connected} connection reports connected`
            : c.red('  mesh: no signaling instance answers'),
          `  signaling: ${MODES[r.signaling_mode ?? 'single']}`,
        ].join('\n');
      });
      if (!report.healthy) io.setExitCode(ExitCode.checkFailed);
    });
}
