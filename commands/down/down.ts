import { defineCommand, failedIf } from '../../src/cli/define.js';
import { formatDuration } from '../../src/ui/units.js';

export default defineCommand<{ json?: boolean }, [], 'state'>({
  path: 'down',
  examples: ['ifmesh down'],
  flags: ['json', 'stage', 'state-dir'],
  needs: ['state'],
  async run({ needs, ctx, out }) {
    const { down } = await import('../../src/ops/stack/down.js');
    const report = await down({ state: needs.state }, ctx);
    out.result(report, (r, c) =>
      r.stopped.length + r.not_running.length + r.failed.length === 0
        ? `no processes recorded in ${r.state_dir}`
        : [
            `${r.failed.length ? c.red('✗') : c.green('✓')} stopped ${r.stopped.join(', ') || 'nothing'} in ${formatDuration(r.elapsed_ms)}${r.not_running.length ? c.dim(` (not running: ${r.not_running.join(', ')})`) : ''}`,
            ...(r.failed.length ? [c.red(`  still running after SIGKILL: ${r.failed.join(', ')}`)] : []),
          ].join('\n'),
    );
    return failedIf(report.failed.length > 0);
  },
});
