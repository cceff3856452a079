// What every agents command shares: its flags after its own, the instances to ask and their admin
// token, and the agent id check.
import type { Context } from '../../src/cli/context.js';
import type { FlagSpec } from '../../src/cli/define.js';
import type { ConfigFlags } from '../../src/cli/options.js';
import type { LoadedConfig } from '../../src/config/load.js';
import { UsageError } from '../../src/errors.js';
import { AGENT_ID_RULE, isAgentId } from '../../src/protocol/ids.js';
import type { StateDir } from '../../src/state/state-dir.js';

export type AgentsFlags = ConfigFlags & {
  json?: boolean;
  signaling?: string;
  reason?: string;
  dryRun?: boolean;
  key?: string;
};

export const AGENTS_FLAGS: readonly FlagSpec[] = ['signaling', 'state-dir', 'config', 'set', 'json'];

export async function targets(
  flags: AgentsFlags,
  needs: { config: LoadedConfig; state: StateDir },
  ctx: Context,
) {
  const [{ resolveTargets }, { adminToken }] = await Promise.all([
    import('../../src/ops/monitoring/monitor.js'),
    import('../../src/ops/troubleshoot/agents.js'),
  ]);
  return {
    signaling: resolveTargets(flags, ctx.env, needs.config, needs.state).signaling,
    token: adminToken(needs.config, needs.state),
  };
}

export function checked(id: string): string {
  if (!isAgentId(id))
    throw new UsageError(`"${String(id).slice(0, 64)}" is not an agent id: ${AGENT_ID_RULE}`);
  return id;
}
