import { defineCommand } from '../../src/cli/define.js';
import { showPlan } from './plan.js';
import { AGENTS_FLAGS, type AgentsFlags, checked, targets } from './targets.js';

export default defineCommand<AgentsFlags, [string], 'config' | 'state'>({
  path: 'agents unblock',
  summary: 'lift a block: the identity may register again',
  examples: ['ifmesh agents unblock agent-7'],
  args: [{ name: '<id>' }],
  flags: [
    { flags: '--dry-run', description: 'show which instances would be asked; change nothing' },
    ...AGENTS_FLAGS,
  ],
  needs: ['config', 'state'],
  async run({ args: [id], flags, needs, ctx, out }) {
    if (flags.dryRun) {
      await showPlan('unblock', id, flags, needs, ctx, out);
      return;
    }
    const { setBlocked, instancesReached } = await import('../../src/ops/troubleshoot/agents.js');
    const r = await setBlocked(await targets(flags, needs, ctx), 'unblock', checked(id), undefined, ctx);
    out.result(
      r,
      (x, c) => `${c.green('✓')} ${x.agent_id} unblocked on ${instancesReached(x.instances)} instance(s)`,
    );
  },
});
