import { defineCommand, failedIf } from '../../src/cli/define.js';
import { deliveryCheck, type FailoverFlags, VALIDATION_FLAGS } from './flags.js';

export default defineCommand<FailoverFlags & { scenario: string }, [], 'fleet'>({
  path: 'failover validate',
  summary:
    'validate-failover-recovery.sh: seven checks, pass/fail each, the recovery time against its target',
  examples: ['ifmesh failover validate --id failover-B-20260101T000000Z-abc123 --scenario B --json'],
  flags: [
    ...VALIDATION_FLAGS,
    { flags: '--id <failover-id>', description: 'the failover to validate', required: true },
    { flags: '--scenario <A-E>', description: 'the scenario it was', required: true },
  ],
  needs: ['fleet'],
  async run({ flags, needs, ctx, out }) {
    const [ops, { parseScenario }, { renderValidation }, { createProgress }] = await Promise.all([
      import('../../src/ops/failover/run.js'),
      import('../../src/ops/failover/validate.js'),
      import('../../src/ui/failover.js'),
      import('../../src/ui/progress.js'),
    ]);
    const scenarioName = parseScenario(flags.scenario);
    const s = ops.failoverSession(needs);
    const progress = await createProgress(ctx, Boolean(flags.json));
    const report = await Promise.resolve()
      .then(() => ops.validateFailover(s, deliveryCheck(flags), flags.id!, scenarioName, progress, ctx))
      .finally(() => progress.close());
    out.result(report, renderValidation);
    return failedIf(!report.passed);
  },
});
