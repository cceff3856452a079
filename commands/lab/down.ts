import { defineCommand } from '../../src/cli/define.js';
import { LAB_NAME } from './name.js';

export default defineCommand<{ name: string; json?: boolean }>({
  path: 'lab down',
  summary: 'stop every lab process, delete its namespaces and files',
  examples: ['ifmesh lab down'],
  flags: [LAB_NAME, 'json'],
  async run({ flags, ctx, out }) {
    const [{ labDown }, { checkLabName }, { renderLabDown }] = await Promise.all([
      import('../../src/ops/lab/lab.js'),
      import('../../src/ops/lab/plan.js'),
      import('../../src/ui/lab.js'),
    ]);
    out.result(await labDown({ name: checkLabName(flags.name) }, ctx), renderLabDown);
  },
});
