import type { Context } from '../../src/cli/context.js';
import type { LoadedConfig } from '../../src/config/load.js';
import type { StateDir } from '../../src/state/state-dir.js';
import type { Output } from '../../src/ui/output.js';
import { type AgentsFlags, checked, targets } from './targets.js';

/** `block`/`unblock --dry-run`: which instances would be asked, and which holds the agent now. */
export async function showPlan(
  action: 'block' | 'unblock',
  id: string,
  flags: AgentsFlags,
  needs: { config: LoadedConfig; state: StateDir },
  ctx: Context,
  out: Output,
): Promise<void> {
  const { planBlock } = await import('../../src/ops/troubleshoot/agents.js');
  const p = await planBlock(await targets(flags, needs, ctx), action, checked(id), flags.reason, ctx);
  out.result(p, (x) =>
    [
      `would ${x.action} ${x.agent_id}${x.reason ? ` (${x.reason})` : ''} on:`,
      ...x.instances.map(
        (i) => `  ${i.url}${i.reachable ? '' : ' (unreachable)'}${i.holds_agent ? ' - holds it now' : ''}`,
      ),
    ].join('\n'),
  );
}
