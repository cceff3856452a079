import { defineCommand, failedIf } from '../../src/cli/define.js';
import { LAB_NAME } from './name.js';

export default defineCommand<{ name: string; json?: boolean }>({
  path: 'lab status',
  summary: 'the lab: namespaces, processes, addresses',
  examples: ['ifmesh lab status --json'],
  flags: [LAB_NAME, 'json'],
  async run({ flags, ctx, out }) {
    const [{ labStatus }, { checkLabName }, { renderLabStatus }] = await Promise.all([
      import('../../src/ops/lab/lab.js'),
      import('../../src/ops/lab/plan.js'),
      import('../../src/ui/lab.js'),
    ]);
    const report = await labStatus({ name: checkLabName(flags.name) }, ctx);
    out.result(report, renderLabStatus);
    return failedIf(!report.healthy);
  },
});
