import { defineCommand } from '../../src/cli/define.js';
import { RTT_BUDGET_FLAG, TEMP_AGENT_FLAGS } from '../../src/cli/options.js';
import { EXCHANGE_THRESHOLDS } from '../../src/ops/agent/thresholds.js';
import type { LoadFlags } from '../../src/ui/load.js';

export default defineCommand<LoadFlags, [], 'fleet'>({
  path: 'load',
  examples: [
    'ifmesh load --agents 6 --rate 20 --duration 30s',
    'ifmesh load --agents 40 --processes 4 --duration 2m --json > load.json',
    'ifmesh load --signaling-only --agents 10000 --processes 4 --source-addresses 127.0.0.2-17 --rate 0 --duration 1m',
    'ifmesh load --signaling-only --agents 80 --rate 50 --duration 30s --json',
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
    {
      flags: '--signaling-only',
      description:
        'load the signaling servers without WebRTC: the agents open sockets, register with signed proofs all at once, then hold for --duration or relay --rate messages/s on each pair (agents 2k → 2k+1); RTT flags apply to the one-way relay',
    },
    {
      flags: '--source-addresses <ips>',
      description:
        'with --signaling-only: connect from these local addresses in turn (127.0.0.2-17 or a comma list), so many sockets to one port do not run out of ephemeral ports',
    },
    {
      flags: '--inflight <n>',
      description:
        'with --signaling-only: at most n registrations outstanding per process (default: all at once)',
    },
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
      const { serveWorker } = await import('../../src/ops/agent/load-process.js');
      io.claimSignal();
      await serveWorker(process.stdin, (l) => process.stdout.write(`${l}\n`), ctx.signal);
      return;
    }
    if (flags.signalingOnly) {
      const [{ runSignalingLoad }, { signalingLoadOptions }, { renderSignalingLoad }] = await Promise.all([
        import('../../src/ops/agent/signaling-load.js'),
        import('./options.js'),
        import('../../src/ui/load.js'),
      ]);
      const report = await runSignalingLoad(
        signalingLoadOptions(flags, needs, ctx, (line) => out.info(line)),
      );
      out.result(report, renderSignalingLoad);
      return report.ok ? undefined : 'checkFailed';
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
