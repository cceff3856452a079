import type { Command } from 'commander';
import { type ConfigFlags, shared, withConfigOptions, withJson } from '../src/cli/options.js';
import type { CommandIo } from '../src/cli/registry.js';
import { loadConfig } from '../src/config/load.js';
import { resolveStateDir } from '../src/config/state.js';
import { durationMs } from '../src/ops/rollout/duration.js';
import { MONITOR_DEFAULTS, monitor } from '../src/ops/rollout/monitor.js';
import { resolveWitness } from '../src/ops/shared.js';
import { createProgress } from '../src/ui/progress.js';

interface Flags extends ConfigFlags {
  deploymentId: string;
  duration: string;
  interval: string;
  window: string;
  rollback: boolean;
  stateDir?: string;
  witness?: string;
  json?: boolean;
}

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(withConfigOptions(cmd))
    .requiredOption('--deployment-id <id>', 'the deployment to watch')
    .option('--duration <duration>', 'how long to watch', '5m')
    .option('--interval <duration>', 'time between checks', '10s')
    .option('--window <duration>', 'sliding window of witness events each check reads', '1m')
    .option('--no-rollback', 'report a breach (exit 1) without rolling back')
    .addOption(shared('state-dir'))
    .addOption(shared('witness'))
    .action(async (flags: Flags) => {
      const loaded = await loadConfig({ cwd: ctx.cwd, env: ctx.env, file: flags.config, flags: flags.set });
      const stateDir = resolveStateDir(ctx.cwd, ctx.env, flags.stateDir);
      // NDJSON: one line per check, then the report as the last line.
      const line = (x: unknown) => ctx.stdout.write(`${JSON.stringify(x)}\n`);
      const progress = await createProgress(ctx, Boolean(flags.json));
      const r = await monitor(
        {
          deploymentId: flags.deploymentId,
          durationMs: durationMs(flags.duration, '--duration'),
          intervalMs: durationMs(flags.interval, '--interval', 50),
          windowMs: durationMs(flags.window, '--window', 1_000),
          thresholds: MONITOR_DEFAULTS,
          rollback: flags.rollback,
          stateDir,
          config: resolveWitness(loaded, flags.witness, stateDir),
          progress,
          onCheck: (c) =>
            flags.json
              ? line({ type: 'check', ...c })
              : ctx.stderr.write(
                  `[${Math.round(c.elapsed_ms / 1000)}s] events ${c.events}, error rate ${c.error_rate ?? 'n/a'}, connection success ${c.connection_success ?? 'n/a'}, memory growth ${c.memory_growth_mb ?? 'n/a'} MiB, DTLS ${c.dtls_failures}, signature ${c.signature_failures}${c.breach ? ` ✗ ${c.breach.trigger} ${c.breach.value} ${c.breach.threshold}` : ''}\n`,
                ),
        },
        ctx,
      ).finally(() => progress.close());
      if (flags.json) line({ type: 'result', ...r });
      else
        ctx.stdout.write(
          r.breach
            ? `✗ ${r.breach.trigger} ${r.breach.value} (${r.breach.threshold}): ${r.rollback ? `rolled back to ${r.rollback.plan.to.id}` : 'not rolled back (--no-rollback)'}\n`
            : `✓ ${r.deployment_id}: ${r.checks} checks, no rollback triggered\n`,
        );
      if (r.breach) io.setExitCode(1);
    });
}
