import { defineCommand } from '../../src/cli/define.js';
import { durationFlag } from '../../src/cli/options.js';
import { createProgress } from '../../src/ui/progress.js';

type Flags = { reason?: string; healthTimeout: string; dryRun?: boolean; json?: boolean };

export default defineCommand<Flags, [string | undefined], 'witness'>({
  path: 'rollback',
  examples: ['ifmesh rollback --reason "error rate"', 'ifmesh rollback v1.3.0 --dry-run'],
  args: [
    { name: '[release]', description: 'release id or ref to go back to (default: the previous release)' },
  ],
  flags: [
    'config',
    'set',
    'json',
    { flags: '--reason <text>', description: 'why, recorded with deployment_rollback' },
    {
      flags: '--health-timeout <duration>',
      description: "how long the target's agents have to run and register",
      default: '20s',
    },
    'stage',
    'state-dir',
    'witness',
    { flags: '--dry-run', description: 'print the plan and change nothing' },
  ],
  needs: ['witness'],
  async run({ args: [target], flags, needs, ctx, out }) {
    const [{ rollback }, { blockedLine }] = await Promise.all([
      import('../../src/ops/rollout/rollback.js'),
      import('../../src/ui/rollout.js'),
    ]);
    const progress = await createProgress(ctx, Boolean(flags.json));
    const r = await rollback(
      {
        state: needs.state,
        target,
        reason: flags.reason,
        config: needs.witness,
        progress,
        registerTimeoutMs: durationFlag(flags.healthTimeout, '--health-timeout', { min: 100 }),
      },
      Boolean(flags.dryRun),
      ctx,
    ).finally(() => progress.close());
    out.result(r, (x, c) =>
      [
        x.applied
          ? `${c.green('✓ rolled back')} from ${x.plan.from.id} (${x.plan.from.ref}) to ${x.plan.to.id} (${x.plan.to.ref})`
          : `${c.bold('plan')}: roll back from ${x.plan.from.id} (${x.plan.from.ref}) to ${x.plan.to.id} (${x.plan.to.ref}) (dry run: nothing changed)`,
        `  agents     ${x.plan.agents.join(', ')}`,
        `  code       ${x.plan.code.changes ? `${x.plan.code.from} → ${x.plan.code.to}; signaling restarted one at a time: ${x.plan.signaling.join(', ') || 'none recorded'}` : `${x.plan.code.to} (unchanged)`}`,
        `  reason     ${x.plan.reason} (by ${x.plan.operator})`,
        ...(x.blocked_by ? [blockedLine(x.blocked_by, 'rollback', c)] : []),
        ...(x.plan.continues
          ? [
              `  continues  the rollback interrupted ${x.plan.continues.step ? `after ${x.plan.continues.step}` : 'at its start'} (run ${x.plan.continues.run_id})`,
            ]
          : []),
      ].join('\n'),
    );
  },
});
