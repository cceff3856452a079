import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import {
  type ConfigFlags,
  durationFlag,
  intFlag,
  shared,
  withConfigOptions,
  withJson,
} from '../src/cli/options.js';
import { loadCommandConfig } from '../src/cli/tls.js';
import { ExitCode } from '../src/errors.js';
import { parseThresholds } from '../src/ops/monitoring/thresholds.js';
import { monitor } from '../src/ops/rollout/monitor.js';
import { resolveWitness } from '../src/ops/shared.js';
import { resolveState } from '../src/state/state-dir.js';
import { createProgress } from '../src/ui/progress.js';
import { renderMonitorCheck, renderMonitorReport } from '../src/ui/rollout.js';

interface Flags extends ConfigFlags {
  deploymentId: string;
  duration: string;
  interval: string;
  window: string;
  failureLimit: string;
  consecutiveErrorLimit: string;
  optionalGate?: string[];
  threshold?: string[];
  rollback: boolean;
  stateDir?: string;
  witness?: string;
  json?: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(withConfigOptions(cmd))
    .requiredOption('--deployment-id <id>', 'the deployment to watch')
    .option('--duration <duration>', 'how long to watch', '5m')
    .option('--interval <duration>', 'time between checks', '10s')
    .option('--window <duration>', 'sliding window of witness events each check reads', '1m')
    .option('--failure-limit <n>', 'failed checks tolerated (0: roll back on the first, as the runbook)', '0')
    .option(
      '--consecutive-error-limit <n>',
      'checks in a row a gate may be unmeasurable before it fails',
      '4',
    )
    .option(
      '--optional-gate <gate>',
      'a gate that may stay unmeasured (default: memory_growth_mb); repeatable',
      collect,
    )
    .option('--threshold <NAME=VALUE>', 'override a threshold, e.g. error_rate=0.02; repeatable', collect)
    .option('--no-rollback', 'report a failure (exit 1) without rolling back')
    .addOption(shared('stage'))
    .addOption(shared('state-dir'))
    .addOption(shared('witness'))
    .action(async (flags: Flags) => {
      const loaded = await loadCommandConfig(ctx, flags);
      const state = resolveState(ctx.cwd, ctx.env, flags.stateDir, flags.stage);
      // NDJSON: one line per check, then the report as the last line.
      const line = (x: unknown) => ctx.stdout.write(`${JSON.stringify(x)}\n`);
      const progress = await createProgress(ctx, Boolean(flags.json));
      const out = io.output(flags);
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
          state,
          config: resolveWitness(loaded, flags.witness, state),
          progress,
          onCheck: (c) =>
            flags.json ? line({ type: 'check', ...c }) : out.info(renderMonitorCheck(c, out.c)),
        },
        ctx,
      ).finally(() => progress.close());
      if (flags.json) line({ type: 'result', ...r });
      else out.result(r, renderMonitorReport);
      if (r.result !== 'passed') io.setExitCode(ExitCode.checkFailed);
    });
}
