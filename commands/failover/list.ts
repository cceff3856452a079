import { defineCommand } from '../../src/cli/define.js';

export default defineCommand<{ json?: boolean }>({
  path: 'failover list',
  summary: "the guide's classification: scenarios A–E, scope, recovery-time target, manual steps",
  examples: ['ifmesh failover list'],
  flags: ['json'],
  async run({ out }) {
    const [{ CLASSIFICATION }, { renderClassification }] = await Promise.all([
      import('../../src/ops/failover/classification.js'),
      import('../../src/ui/failover.js'),
    ]);
    out.result({ scenarios: CLASSIFICATION }, (d) => renderClassification(d.scenarios));
  },
});
