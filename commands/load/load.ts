import { defineCommand } from '../../src/cli/define.js';
import { RTT_BUDGET_FLAG, TEMP_AGENT_FLAGS } from '../../src/cli/options.js';
import { EXCHANGE_THRESHOLDS } from '../../src/ops/agent/thresholds.js';
import type { LoadFlags } from '../../src/ui/load.js';

export default defineCommand<LoadFlags, [], 'fleet'>({
  path: 'load',
  examples: [
    'ifmesh load --agents 6 --rate 20 --duration 30s',
    'ifmesh load --agents 40 --processes 4 --duration 2m --json > load.json',
  ],
  flags: [
    'config',
    'set',
    'json',
    RTT_BUDGET_FLAG,
    { flags: '--agents <n>', description: 'temporary agents (every pair exchanges pings)', default: '4' },
    { flags: '--processes <n>', description: 'spread the agents over this many processes', default: '1' },
    { flags: '--duration <duration>', description: 'how long each pair sends (10s, 2m)', default: '10s' },
    { flags: '--rate <n>', description: 'signed pings per second on each pair', default: '10' },
    {
      flags: '--ping-timeout <duration>',
      description: 'a ping unanswered after this long is lost',
      default: '5s',
    },
    {
      flags: '--min-delivery <ratio>',
      description: 'fail below this delivered ratio',
      default: String(EXCHANGE_THRESHOLDS.delivery_ratio),
    },
    { flags: '--form-timeout <duration>', description: 'time allowed for the mesh to form', default: '30s' },
    'signaling',
    ...TEMP_AGENT_FLAGS,
    'stage',
    'state-dir',
    {
      flags: '--worker',
      description: 'one process of a multi-process run (started by ifmesh load)',
      hidden: true,
    },
  ],
  needs: ['fleet'],
  // A worker reads its spec on stdin: it resolves no fleet.
  needsIf: (flags) => !flags.worker,
  async run({ flags, needs, ctx, io, out }) {
    if (flags.worker) {
      const [{ serveWorker }, { runLoadWorker }] = await Promise.all([
        import('../../src/ops/agent/load-process.js'),
        import('../../src/ops/agent/load.js'),
      ]);
      io.claimSignal();
      await serveWorker(process.stdin, (l) => process.stdout.write(`${l}\n`), runLoadWorker, ctx.signal);
      return;
    }
    const [{ runLoad }, { loadOptions }, { renderLoad }] = await Promise.all([
      import('../../src/ops/agent/load.js'),
      import('./options.js'),
      import('../../src/ui/load.js'),
    ]);
    const report = await runLoad(loadOptions(flags, needs, ctx, (line) => out.info(line)));
    out.result(report, renderLoad);
    return report.ok ? undefined : 'checkFailed';
  },
});
