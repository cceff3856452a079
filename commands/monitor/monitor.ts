import { defineCommand, failedIf } from '../../src/cli/define.js';
import { durationFlag, intFlag } from '../../src/cli/options.js';
import { createProgress } from '../../src/ui/progress.js';

interface Flags {
  deploymentId: string;
  duration: string;
  interval: string;
  window: string;
  failureLimit: string;
  consecutiveErrorLimit: string;
  optionalGate?: string[];
  threshold?: string[];
  rollback: boolean;
  json?: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export default defineCommand<Flags, [], 'witness'>({
  path: 'monitor',
  examples: ['ifmesh monitor --deployment-id prod-42 --duration 5m --interval 10s --json'],
  flags: [
    'config',
    'set',
    'json',
    { flags: '--deployment-id <id>', description: 'the deployment to watch', required: true },
    { flags: '--duration <duration>', description: 'how long to watch', default: '5m' },
    { flags: '--interval <duration>', description: 'time between checks', default: '10s' },
    {
      flags: '--window <duration>',
      description: 'sliding window of witness events each check reads',
      default: '1m',
    },
    {
      flags: '--failure-limit <n>',
      description: 'failed checks tolerated (0: roll back on the first, as the runbook)',
      default: '0',
    },
    {
      flags: '--consecutive-error-limit <n>',
      description: 'checks in a row a gate may be unmeasurable before it fails',
      default: '4',
    },
    {
      flags: '--optional-gate <gate>',
      description: 'a gate that may stay unmeasured (default: memory_growth_mb); repeatable',
      parse: collect,
    },
    {
      flags: '--threshold <NAME=VALUE>',
      description: 'override a threshold, e.g. error_rate=0.02; repeatable',
      parse: collect,
    },
    { flags: '--no-rollback', description: 'report a failure (exit 1) without rolling back' },
    'stage',
    'state-dir',
    'witness',
  ],
  needs: ['witness'],
  async run({ flags, needs, ctx, out }) {
    const [{ parseThresholds }, { monitor }, { renderMonitorCheck, renderMonitorReport }] = await Promise.all(
      [
        import('../../src/ops/monitoring/thresholds.js'),
        import('../../src/ops/rollout/monitor.js'),
        import('../../src/ui/rollout.js'),
      ],
    );
    // NDJSON: one line per check, then the report as the last line.
    const line = (x: unknown) => ctx.stdout.write(`${JSON.stringify(x)}\n`);
    const progress = await createProgress(ctx, Boolean(flags.json));
    const r = await monitor(
      {
        deploymentId: flags.deploymentId,
        durationMs: durationFlag(flags.duration, '--duration'),
        intervalMs: durationFlag(flags.interval, '--interval', { min: 50 }),
        windowMs: durationFlag(flags.window, '--window', { min: 1_000 }),
        thresholds: parseThresholds(flags.threshold),
        failureLimit: intFlag(flags.failureLimit, '--failure-limit', 0, 1000),
        consecutiveErrorLimit: intFlag(flags.consecutiveErrorLimit, '--consecutive-error-limit', 1, 1000),
        optionalGates: flags.optionalGate ?? [],
        rollback: flags.rollback,
        state: needs.state,
        config: needs.witness,
        progress,
        onCheck: (c) => (flags.json ? line({ type: 'check', ...c }) : out.info(renderMonitorCheck(c, out.c))),
      },
      ctx,
    ).finally(() => progress.close());
    if (flags.json) line({ type: 'result', ...r });
    else out.result(r, renderMonitorReport);
    return failedIf(r.result !== 'passed');
  },
});
