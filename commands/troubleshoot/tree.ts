// The five troubleshoot commands differ in their tree, arguments and words; the rest is this one run.
import type { ArgSpec, CommandDefinition } from '../../src/cli/define.js';
import { type ConfigFlags, MESH_FLAGS } from '../../src/cli/options.js';
import { UsageError } from '../../src/errors.js';
import type { TroubleshootKind } from '../../src/ops/troubleshoot/run.js';
import { AGENT_ID_RULE, isAgentId } from '../../src/protocol/ids.js';

type Flags = ConfigFlags & { json?: boolean; signaling?: string; witness?: string; limit?: string[] };

function id(v: string | undefined, what: string): string | undefined {
  if (v !== undefined && !isAgentId(v))
    throw new UsageError(`${what} "${String(v).slice(0, 64)}" is not an agent id: ${AGENT_ID_RULE}`);
  return v;
}

export function troubleshootCommand(
  kind: TroubleshootKind,
  args: readonly ArgSpec[],
  summary: string,
  examples: readonly string[],
): CommandDefinition<Flags, [string | undefined, string | undefined], 'config' | 'state'> {
  return {
    path: `troubleshoot ${kind}`,
    summary,
    examples,
    args,
    flags: [
      ...MESH_FLAGS,
      {
        flags: '--limit <NAME=VALUE>',
        description:
          "override one of the runbook's limits: rttP2pMs=500 rttTurnMs=2000 jitterMs=100 lossRatio=0.05 memoryBytes; repeatable",
        parse: (v: string, p: string[] = []) => [...p, v],
      },
    ],
    needs: ['config', 'state'],
    async run({ args: [agent, peer], flags, needs: { config, state }, ctx, out }) {
      const [
        { resolveTargets },
        { evidenceSources, faultFound, parseLimits, troubleshoot },
        { troubleshootText },
      ] = await Promise.all([
        import('../../src/ops/monitoring/monitor.js'),
        import('../../src/ops/troubleshoot/run.js'),
        import('../../src/ui/troubleshoot.js'),
      ]);
      const targets = resolveTargets(flags, ctx.env, config, state);
      const subject = {
        ...(id(agent, 'AGENT') ? { agent } : {}),
        ...(id(peer, 'PEER') ? { peer } : {}),
      };
      const report = await troubleshoot(
        kind,
        subject,
        await evidenceSources(targets, config, state, ctx, parseLimits(flags.limit)),
      );
      out.result(report, troubleshootText);
      // A root cause found, or an instance not serving, is a failed check (exit 1); no fault is success.
      return faultFound(report) ? 'checkFailed' : undefined;
    },
  };
}
