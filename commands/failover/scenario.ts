import type { Context } from '../../src/cli/context.js';
import { type CommandDefinition, defineCommand, type FlagSpec, failedIf } from '../../src/cli/define.js';
import { durationFlag } from '../../src/cli/options.js';
import type { FailoverSession } from '../../src/ops/failover/run.js';
import type { FailoverPlan } from '../../src/ops/failover/scenarios.js';
import type { Scenario } from '../../src/ops/failover/validate.js';
import { deliveryCheck, type FailoverFlags, SCENARIO_FLAGS } from './flags.js';

type Plan<F> = (flags: F, s: FailoverSession, id: string, ctx: Context) => Promise<FailoverPlan>;

/** A scenario: plans with `plan`, prints it on --dry-run, else applies it under the deploy lock and validates. */
export function scenario<F extends FailoverFlags>(
  letter: Scenario,
  def: { name: string; summary: string; example: string; flags: readonly FlagSpec[] },
  plan: Plan<F>,
): CommandDefinition<F, [], 'fleet'> {
  return defineCommand<F, [], 'fleet'>({
    path: `failover ${def.name}`,
    summary: def.summary,
    examples: [def.example],
    flags: [...SCENARIO_FLAGS, ...def.flags],
    needs: ['fleet'],
    async run({ flags, needs, ctx, out }) {
      const timeoutMs = durationFlag(flags.timeout, '--timeout', { max: 3_600_000 });
      const check = deliveryCheck(flags);
      const [ops, { newFailoverId }, ui, { createProgress }] = await Promise.all([
        import('../../src/ops/failover/run.js'),
        import('../../src/ops/failover/scenarios.js'),
        import('../../src/ui/failover.js'),
        import('../../src/ui/progress.js'),
      ]);
      const s = ops.failoverSession(needs);
      const p = await plan(flags, s, flags.id ?? newFailoverId(letter, ctx.clock.now()), ctx);
      if (flags.dryRun) {
        out.result({ plan: p, dry_run: true }, ui.renderPlan);
        return;
      }
      const doc = await ops.applyAndValidate(p, s, check, timeoutMs, ctx, () =>
        createProgress(ctx, Boolean(flags.json)),
      );
      out.result(doc, ui.renderFailover);
      return failedIf(!doc.ok);
    },
  });
}
