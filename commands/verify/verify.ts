import { defineCommand } from '../../src/cli/define.js';
import {
  durationFlag,
  intFlag,
  RTT_BUDGET_FLAG,
  rttBudgetMs,
  TEMP_AGENT_FLAGS,
} from '../../src/cli/options.js';
import { createProgress } from '../../src/ui/progress.js';
import type { VerifyFlags } from '../../src/ui/verify.js';

export default defineCommand<VerifyFlags, [], 'fleet'>({
  path: 'verify',
  examples: ['ifmesh verify --message-exchange --agents 3 --messages 100'],
  flags: [
    'config',
    'set',
    'json',
    RTT_BUDGET_FLAG,
    {
      flags: '--deployment-id <id>',
      description: 'tag every witness event of this run with the deployment id',
    },
    {
      flags: '--retries <n>',
      description: 'attempts per step (signaling health, agents, connections)',
      default: '30',
    },
    { flags: '--interval <duration>', description: 'wait between attempts (5s, 500ms)', default: '5s' },
    {
      flags: '--message-exchange',
      description:
        "only the fourth step: temporary agents exchange signed pings over every pair (the runbook's test-message-exchange.js)",
    },
    { flags: '--agents <n>', description: 'temporary agents for the message exchange', default: '3' },
    { flags: '--messages <n>', description: 'signed pings per pair', default: '100' },
    'signaling',
    'witness',
    ...TEMP_AGENT_FLAGS,
    {
      flags: '--timeout <duration>',
      description: 'time allowed for the exchange mesh to form',
      default: '20s',
    },
    'stage',
    'state-dir',
  ],
  needs: ['fleet'],
  async run({ flags, needs, ctx, out }) {
    const options = {
      agents: intFlag(flags.agents, '--agents', 2, 50),
      messages: intFlag(flags.messages, '--messages', 1, 100_000),
      retries: intFlag(flags.retries, '--retries', 1, 10_000),
      intervalMs: durationFlag(flags.interval, '--interval'),
      maxRttP95Ms: rttBudgetMs(flags.maxRttP95),
      formTimeoutMs: durationFlag(flags.timeout, '--timeout', { min: 1_000 }),
      loaded: needs.config,
      state: needs.state,
      fleet: needs.fleet,
      stun: flags.stun,
      loopback: Boolean(flags.loopback),
      insecure: Boolean(flags.insecure),
      onInfo: (line: string) => out.info(line),
    };
    const [{ verifyExchange, verifyFleet }, { renderExchange, renderVerify }] = await Promise.all([
      import('../../src/ops/verify/fleet.js'),
      import('../../src/ui/verify.js'),
    ]);
    if (flags.messageExchange) {
      const report = await verifyExchange(options, ctx);
      out.result(report, renderExchange);
      return report.ok ? undefined : 'checkFailed';
    }
    const report = await verifyFleet(
      {
        ...options,
        deploymentId: flags.deploymentId,
        progress: () => createProgress(ctx, Boolean(flags.json)),
        onWarn: (m) => out.warn(m),
      },
      ctx,
    );
    out.result(report, renderVerify);
    return { exitCode: report.exit_code };
  },
});
