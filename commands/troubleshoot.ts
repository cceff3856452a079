import type { Command } from 'commander';
import type { CommandIo } from '../src/cli/define.js';
import { type ConfigFlags, withFlags } from '../src/cli/options.js';
import { loadCommandConfig } from '../src/cli/tls.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { resolveTargets } from '../src/ops/monitoring/monitor.js';
import {
  evidenceSources,
  parseLimits,
  type TroubleshootKind,
  troubleshoot,
} from '../src/ops/troubleshoot/run.js';
import { AGENT_ID_RULE, isAgentId } from '../src/protocol/ids.js';
import { resolveState } from '../src/state/state-dir.js';
import { troubleshootText } from '../src/ui/troubleshoot.js';

type Flags = ConfigFlags & {
  json?: boolean;
  signaling?: string;
  witness?: string;
  stateDir?: string;
  limit?: string[];
};

const KINDS: { kind: TroubleshootKind; args: string; what: string }[] = [
  {
    kind: 'connection-timeout',
    args: '<agent> <peer>',
    what: 'why AGENT does not connect to PEER (tree 1; troubleshoot-connection-timeout.sh)',
  },
  { kind: 'packet-loss', args: '<agent>', what: "AGENT's packet loss (tree 3; troubleshoot-packet-loss.sh)" },
  { kind: 'latency', args: '<agent>', what: "AGENT's latency (tree 2)" },
  {
    kind: 'dtls',
    args: '<agent> <peer>',
    what: 'certificate and signature failures (tree 4; troubleshoot-dtls-validation.sh)',
  },
  { kind: 'memory', args: '[agent]', what: 'memory growth and connection leaks (troubleshoot-memory.sh)' },
];

function id(v: string | undefined, what: string): string | undefined {
  if (v !== undefined && !isAgentId(v))
    throw new UsageError(`${what} "${String(v).slice(0, 64)}" is not an agent id: ${AGENT_ID_RULE}`);
  return v;
}

export function register(cmd: Command, io: CommandIo): void {
  const { ctx } = io;
  for (const k of KINDS) {
    withFlags(
      cmd.command(`${k.kind} ${k.args}`).description(k.what),
      'signaling',
      'witness',
      'state-dir',
      'config',
      'set',
      'json',
    )
      .option(
        '--limit <NAME=VALUE>',
        "override one of the runbook's limits: rttP2pMs=500 rttTurnMs=2000 jitterMs=100 lossRatio=0.05 memoryBytes; repeatable",
        (v: string, p: string[] = []) => [...p, v],
      )
      .action(async (agent: string | undefined, peerOrFlags: string | Flags, maybeFlags?: Flags) => {
        const flags = (typeof peerOrFlags === 'string' ? maybeFlags : peerOrFlags) as Flags;
        const peer = typeof peerOrFlags === 'string' ? peerOrFlags : undefined;
        const loaded = await loadCommandConfig(ctx, flags);
        const state = resolveState(ctx.cwd, ctx.env, flags.stateDir);
        const targets = resolveTargets(flags, ctx.env, loaded, state);
        const subject = {
          ...(id(agent, 'AGENT') ? { agent } : {}),
          ...(id(peer, 'PEER') ? { peer } : {}),
        };
        const report = await troubleshoot(
          k.kind,
          subject,
          evidenceSources(targets, loaded, state, ctx, parseLimits(flags.limit)),
        );
        io.output(flags).result(report, troubleshootText);
        // A root cause found is a failed check (exit 1); no fault is success.
        if (report.walk.root_cause) io.setExitCode(ExitCode.checkFailed);
      });
  }
}
