import type { Command } from 'commander';
import { shared, withJson } from '../src/cli/options.js';
import type { CommandIo } from '../src/cli/registry.js';
import { releaseHistory } from '../src/ops/rollout/history.js';
import { resolveState } from '../src/state/state-dir.js';

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(cmd)
    .addOption(shared('stage'))
    .addOption(shared('state-dir'))
    .action(async (flags: { stateDir?: string; stage?: string; json?: boolean }) => {
      const h = await releaseHistory(resolveState(ctx.cwd, ctx.env, flags.stateDir, flags.stage));
      io.output(flags).result(h, (x, c) =>
        x.releases.length === 0
          ? 'no releases recorded (ifmesh deploy records one)'
          : [
              ...x.releases.map(
                (r) =>
                  `${r.current ? c.green('*') : ' '} ${r.id}  ${r.ref}  ${r.code ? `code ${r.code.version} (${r.code.id})` : 'code: running ifmesh'}  config ${r.config_hash}  ${r.created_at}  ${r.who ?? '-'}  ${r.outcome ?? '-'}`,
              ),
              '',
              c.bold('code'),
              ...x.installed
                .filter((b) => b.id !== null || b.processes.length)
                .map(
                  (b) =>
                    `  ${b.id ?? 'running ifmesh'}  ${b.version}  ${b.source.kind} ${b.source.spec}${b.source.commit ? ` (${b.source.commit.slice(0, 12)})` : ''}${b.integrity ? `  ${b.integrity.slice(0, 30)}…` : ''}\n    runs: ${b.processes.join(', ') || c.dim('nothing')}`,
                ),
            ].join('\n'),
      );
    });
}
