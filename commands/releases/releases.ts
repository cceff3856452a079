import { defineCommand } from '../../src/cli/define.js';

export default defineCommand<{ json?: boolean }, [], 'state'>({
  path: 'releases',
  examples: ['ifmesh releases', 'ifmesh releases --json'],
  flags: ['json', 'stage', 'state-dir'],
  needs: ['state'],
  async run({ needs, out }) {
    const { releaseHistory } = await import('../../src/ops/rollout/history.js');
    const history = await releaseHistory(needs.state);
    out.result(history, (x, c) =>
      [
        ...(x.current_error ? [c.red(`✗ ${x.current_error.error}: ${x.current_error.fix}`)] : []),
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
      ].join('\n'),
    );
    // The list is printed, but the fleet has no current release until the file is fixed.
    return history.current_error ? 'checkFailed' : undefined;
  },
});
