import type { ChalkInstance } from 'chalk';
import { defineCommand, failedIf } from '../../src/cli/define.js';
import type { DownPlan } from '../../src/ops/stack/down.js';
import { formatDuration } from '../../src/ui/units.js';

export default defineCommand<{ json?: boolean; dryRun?: boolean }, [], 'state'>({
  path: 'down',
  examples: ['ifmesh down', 'ifmesh down --dry-run'],
  flags: [
    { flags: '--dry-run', description: 'print what would be stopped, in order, and stop nothing' },
    'json',
    'stage',
    'state-dir',
  ],
  needs: ['state'],
  async run({ flags, needs, ctx, out }) {
    const { down, planDown } = await import('../../src/ops/stack/down.js');
    if (flags.dryRun) {
      const plan = await planDown(needs.state);
      out.result({ plan, dry_run: true }, (r, c) => renderDownPlan(r.plan, c));
      return;
    }
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

function renderDownPlan(p: DownPlan, c: ChalkInstance): string {
  if (p.steps.length === 0) return `no processes recorded in ${p.state_dir}: down would stop nothing`;
  const running = p.steps.flat().filter((x) => x.pid !== null).length;
  return [
    `down would stop ${running} running process(es) of ${p.state_dir}, in this order (dry run, nothing stopped):`,
    ...p.steps.map(
      (step, i) =>
        `  ${i + 1}. ${step
          .map((x) =>
            x.pid === null
              ? c.dim(`${x.name} (not running: record forgotten)`)
              : `${x.name} (${x.unit ? `unit ${x.unit}, ` : ''}pid ${x.pid})`,
          )
          .join(', ')}`,
    ),
    ...(p.deploy_lock
      ? [
          c.yellow(
            `  note: the deploy lock is held by ${p.deploy_lock.holder} (pid ${p.deploy_lock.pid}): down stops its processes anyway`,
          ),
        ]
      : []),
  ].join('\n');
}
