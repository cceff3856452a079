import { defineCommand } from '../../src/cli/define.js';
import { intFlag } from '../../src/cli/options.js';
import { LAB_NAME } from './name.js';

type Flags = { name: string; nat: string; turnServers: string; dryRun?: boolean; json?: boolean };

export default defineCommand<Flags>({
  path: 'lab up',
  summary: 'build the lab and start coturn, signaling and the witness',
  examples: ['ifmesh lab up --nat cone,symmetric --dry-run'],
  flags: [
    LAB_NAME,
    'json',
    {
      flags: '--nat <types>',
      description: 'one host per entry, each behind its own NAT: cone, symmetric or none',
      default: 'cone,symmetric',
    },
    {
      flags: '--turn-servers <n>',
      description: 'coturn instances in the public namespace (1 or 2)',
      default: '1',
    },
    {
      flags: '--dry-run',
      description: 'print the plan (namespaces, ip and nft commands, processes) and change nothing',
    },
  ],
  async run({ flags, ctx, out }) {
    const [{ labUp }, { checkLabName, parseNats }, { renderLabUp }] = await Promise.all([
      import('../../src/ops/lab/lab.js'),
      import('../../src/ops/lab/plan.js'),
      import('../../src/ui/lab.js'),
    ]);
    const report = await labUp(
      {
        name: checkLabName(flags.name),
        nats: parseNats(flags.nat),
        turnServers: intFlag(flags.turnServers, '--turn-servers', 1, 2),
        dryRun: Boolean(flags.dryRun),
        progress: (line) => out.info(line),
      },
      ctx,
    );
    out.result(report, renderLabUp);
  },
});
