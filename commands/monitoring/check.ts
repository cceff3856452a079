import { defineCommand, failedIf } from '../../src/cli/define.js';
import { durationFlag } from '../../src/cli/options.js';
import { type MonitoringFlags, TARGET_FLAGS } from './flags.js';

export default defineCommand<MonitoringFlags & { sampleMs: string }, [], 'config' | 'state'>({
  path: 'monitoring check',
  summary: "evaluate the runbook's metric tables against the live mesh; exit 1 on any alert",
  examples: ['ifmesh monitoring check --json'],
  flags: [
    {
      flags: '--sample-ms <duration>',
      description: 'time between the two looks at the mesh (CPU is a rate)',
      default: '1s',
    },
    ...TARGET_FLAGS,
  ],
  needs: ['config', 'state'],
  async run({ flags, needs: { config, state }, ctx, out }) {
    const [{ resolveTargets, runCheck }, { parseThresholds }, { renderCheck }] = await Promise.all([
      import('../../src/ops/monitoring/monitor.js'),
      import('../../src/ops/monitoring/thresholds.js'),
      import('../../src/ui/monitoring.js'),
    ]);
    const report = await runCheck(
      {
        targets: resolveTargets(flags, ctx.env, config, state),
        thresholds: parseThresholds(flags.threshold),
        sampleMs: durationFlag(flags.sampleMs, '--sample-ms', { min: 0, max: 60_000 }),
      },
      ctx,
    );
    out.result(report, renderCheck);
    return failedIf(!report.ok);
  },
});
