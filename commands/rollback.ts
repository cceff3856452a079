import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { type ConfigFlags, durationFlag, shared, withConfigOptions, withJson } from '../src/cli/options.js';
import { loadCommandConfig } from '../src/cli/tls.js';
import { rollback } from '../src/ops/rollout/rollback.js';
import { resolveWitness } from '../src/ops/shared.js';
import { resolveState } from '../src/state/state-dir.js';
import { createProgress } from '../src/ui/progress.js';

interface Flags extends ConfigFlags {
  reason?: string;
  healthTimeout: string;
  dryRun?: boolean;
  stateDir?: string;
  witness?: string;
  json?: boolean;
}

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  withJson(withConfigOptions(cmd))
    .argument('[release]', 'release id or ref to go back to (default: the previous release)')
    .option('--reason <text>', 'why, recorded with deployment_rollback')
    .option('--health-timeout <duration>', "how long the target's agents have to run and register", '20s')
    .addOption(shared('stage'))
    .addOption(shared('state-dir'))
    .addOption(shared('witness'))
    .option('--dry-run', 'print the plan and change nothing')
    .action(async (target: string | undefined, flags: Flags) => {
      const loaded = await loadCommandConfig(ctx, flags);
      const state = resolveState(ctx.cwd, ctx.env, flags.stateDir, flags.stage);
      const progress = await createProgress(ctx, Boolean(flags.json));
      const r = await rollback(
        {
          state,
          target,
          reason: flags.reason,
          config: resolveWitness(loaded, flags.witness, state),
          progress,
          registerTimeoutMs: durationFlag(flags.healthTimeout, '--health-timeout', { min: 100 }),
        },
        Boolean(flags.dryRun),
        ctx,
      ).finally(() => progress.close());
      io.output(flags).result(r, (x, c) =>
        [
          x.applied
            ? `${c.green('✓ rolled back')} from ${x.plan.from.id} (${x.plan.from.ref}) to ${x.plan.to.id} (${x.plan.to.ref})`
            : `${c.bold('plan')}: roll back from ${x.plan.from.id} (${x.plan.from.ref}) to ${x.plan.to.id} (${x.plan.to.ref}) (dry run: nothing changed)`,
          `  agents     ${x.plan.agents.join(', ')}`,
          `  code       ${x.plan.code.changes ? `${x.plan.code.from} → ${x.plan.code.to}; signaling restarted one at a time: ${x.plan.signaling.join(', ') || 'none recorded'}` : `${x.plan.code.to} (unchanged)`}`,
          `  reason     ${x.plan.reason} (by ${x.plan.operator})`,
          ...(x.plan.continues
            ? [
                `  continues  the rollback interrupted ${x.plan.continues.step ? `after ${x.plan.continues.step}` : 'at its start'} (run ${x.plan.continues.run_id})`,
              ]
            : []),
        ].join('\n'),
      );
    });
}
